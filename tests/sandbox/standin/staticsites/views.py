"""ARM JSON shapes of Static Web Apps, as azure-mgmt-web's StaticSitesOperations
deserializes them (StaticSiteARMResource, StaticSiteBuildARMResource).

One property is the sandbox's own: `sandboxDeployHistory` on a build lists what
the environment served, oldest first. Real ARM has no such property; the SDK
keeps unknown properties in the model's mapping and ignores them otherwise.
"""

STATIC_SITES = "Microsoft.Web/staticSites"


def site_id(arm, site):
    rg = arm.resource_groups[site.resource_group.lower()]
    return f"{arm.rg_id(rg)}/providers/{STATIC_SITES}/{site.name}"


def static_site_resource(arm, site):
    return {
        "id": site_id(arm, site),
        "name": site.name,
        "type": STATIC_SITES,
        "location": site.location,
        "tags": dict(site.tags),
        "sku": {"name": site.sku, "tier": site.sku},
        "properties": {
            "defaultHostname": site.default.host,
            "repositoryUrl": site.repository_url,
            "branch": site.branch,
            "provider": site.provider,
            "customDomains": [],
            "privateEndpointConnections": [],
            "stagingEnvironmentPolicy": site.staging_environment_policy,
            "allowConfigFileUpdates": True,
            "contentDistributionEndpoint": f"https://{site.default.host}",
            "keyVaultReferenceIdentity": "SystemAssigned",
            "userProvidedFunctionApps": None,
            "linkedBackends": [],
            "enterpriseGradeCdnStatus": "Disabled",
            "publicNetworkAccess": "",
            "databaseConnections": [],
        },
    }


def build_resource(arm, env):
    return {
        "id": f"{site_id(arm, env.site)}/builds/{env.name}",
        "name": env.name,
        "type": f"{STATIC_SITES}/builds",
        "properties": {
            "buildId": env.name,
            "sourceBranch": env.source_branch,
            "pullRequestTitle": env.pull_request_title,
            "hostname": env.host,
            "createdTimeUtc": env.created,
            "lastUpdatedOn": env.last_updated,
            "status": env.status,
            "userProvidedFunctionApps": [],
            "linkedBackends": [],
            "databaseConnections": [],
            "sandboxDeployHistory": [dict(d) for d in env.history],
        },
    }


def page(items):
    """ARM collection page; the sandbox never paginates."""
    return {"value": items, "nextLink": None}
