"""ARM JSON shapes of App Service resources, as azure-mgmt-web deserializes them.

Property names follow the REST API (camelCase, except deployments which App
Service returns in snake_case: author_email, start_time, end_time).
"""

from ..core import iso

WEB = "Microsoft.Web"


def site_id(arm, site):
    rg = arm.resource_groups[site.resource_group.lower()]
    return f"{arm.rg_id(rg)}/providers/{WEB}/sites/{site.name}"


def slot_id(arm, slot):
    base = site_id(arm, slot.site)
    return base if slot.is_production else f"{base}/slots/{slot.name}"


def _names(slot):
    """(resource name, resource type) of a site or slot."""
    if slot.is_production:
        return slot.site.name, f"{WEB}/sites"
    return f"{slot.site.name}/{slot.name}", f"{WEB}/sites/slots"


def site_resource(arm, slot):
    site = slot.site
    name, rtype = _names(slot)
    host = slot.host
    rg = arm.resource_groups[site.resource_group.lower()]
    return {
        "id": slot_id(arm, slot),
        "name": name,
        "type": rtype,
        "kind": site.kind,
        "location": site.location,
        "tags": dict(site.tags),
        "properties": {
            "name": name,
            "state": slot.state,
            "hostNames": [host],
            "enabledHostNames": [host],
            "defaultHostName": host,
            "hostNameSslStates": [{"name": host, "sslState": "Disabled", "hostType": "Standard"}],
            "repositorySiteName": site.name,
            "usageState": "Normal",
            "enabled": True,
            "availabilityState": "Normal",
            "serverFarmId": f"{arm.rg_id(rg)}/providers/{WEB}/serverfarms/{site.server_farm}",
            "reserved": True,
            "isXenon": False,
            "hyperV": False,
            "lastModifiedTimeUtc": iso(slot.last_modified),
            "siteConfig": {
                "numberOfWorkers": slot.site_config.get("numberOfWorkers"),
                "linuxFxVersion": slot.site_config.get("linuxFxVersion"),
                "alwaysOn": slot.site_config.get("alwaysOn"),
                "http20Enabled": slot.site_config.get("http20Enabled"),
                "healthCheckPath": slot.site_config.get("healthCheckPath"),
                "minTlsVersion": slot.site_config.get("minTlsVersion"),
            },
            "targetSwapSlot": slot.target_swap_slot,
            "slotSwapStatus": slot.slot_swap_status,
            "resourceGroup": site.resource_group,
            "httpsOnly": True,
            "clientAffinityEnabled": False,
            "clientCertEnabled": False,
            "containerSize": 0,
            "dailyMemoryTimeQuota": 0,
            "outboundIpAddresses": "127.0.0.1",
            "possibleOutboundIpAddresses": "127.0.0.1",
            "publicNetworkAccess": "Enabled",
            "isDefaultContainer": None,
            "redundancyMode": "None",
        },
    }


def config_resource(arm, slot, name, properties):
    """A Microsoft.Web/sites/config child (config/web, appsettings, connectionstrings...)."""
    site_name, _slot_name = _names(slot)
    return {
        "id": f"{slot_id(arm, slot)}/config/{name}",
        "name": name if name != "web" else site_name,
        "type": f"{WEB}/sites/config" if slot.is_production else f"{WEB}/sites/slots/config",
        "location": slot.site.location,
        "properties": properties,
    }


def deployment_resource(arm, slot, record):
    props = {k: v for k, v in record.items() if k != "id"}
    return {
        "id": f"{slot_id(arm, slot)}/deployments/{record['id']}",
        "name": record["id"],
        "type": f"{WEB}/sites/deployments" if slot.is_production else f"{WEB}/sites/slots/deployments",
        "properties": props,
    }


def page(items):
    """ARM collection page; the sandbox never paginates."""
    return {"value": items, "nextLink": None}
