# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Scale an Azure App Service plan up/down (SKU) and out/in (instances), and wait until it serves.

The P2 answer of the sf-ai-assistant runbook ("revert config change or scale
up") as a desired state: a plan size ``{sku, capacity}`` reached either
directly, by a step (``step`` instances, ``sku_step`` sizes within the tier), or
from a record a previous run returned (``to: "{{ scaled.before }}"``), within a
``floor`` and a ``ceiling`` the inventory sets.

- :class:`PlanSize` is a plan's size and how two SKUs compare (by tier, then size).
- :class:`AppServicePlans` reads and writes plans with azure-mgmt-web
  (``get``, ``get_server_farm_skus``, ``begin_create_or_update`` as ``az appservice
  plan update`` does); it does not decide.
- :class:`PlanScale` decides, validates before any change (the SKU against the
  plan's own ``/skus`` list, instance limits, floor and ceiling), scales, and
  waits until ``provisioningState`` is Succeeded and ``numberOfWorkers`` is the
  capacity asked for.

Nothing here imports AnsibleModule.
"""

from __future__ import annotations

import re
import time
import traceback
from dataclasses import dataclass

from ansible_collections.sre.rollback.plugins.module_utils.azure_auth import AZURE_IDENTITY_IMPORT_ERROR, AzureSettings
from ansible_collections.sre.rollback.plugins.module_utils.azure_errors import arm_call
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError, whole_number
from ansible_collections.sre.rollback.plugins.module_utils.operation_wait import OperationTimeout, wait_for_operation

try:
    from azure.mgmt.web import WebSiteManagementClient
except ImportError:
    AZURE_WEB_IMPORT_ERROR = traceback.format_exc()
else:
    AZURE_WEB_IMPORT_ERROR = None

PLAN_LIBRARIES = [("azure-identity", AZURE_IDENTITY_IMPORT_ERROR), ("azure-mgmt-web", AZURE_WEB_IMPORT_ERROR)]

# Pricing tiers from the smallest to the largest, which is how "up" and "down", a floor and
# a ceiling compare SKUs across tiers. Within a tier the size number orders them (P0v3 < P1v3).
TIER_ORDER = ("Free", "Shared", "Basic", "Standard", "Premium", "PremiumV2", "PremiumV3", "PremiumMV3",
              "Isolated", "IsolatedV2")
# The tier a SKU name belongs to, for SKUs a plan's /skus list does not name (a ceiling of P3v3
# on a plan that cannot take PremiumV3 still has to compare).
_SKU_NAME = re.compile(r"^(?P<prefix>F|D|B|S|P|I)(?P<size>\d+)(?P<suffix>mv3|v2|v3)?$", re.IGNORECASE)
_TIER_BY_NAME = {
    ("f", ""): "Free", ("d", ""): "Shared", ("b", ""): "Basic", ("s", ""): "Standard",
    ("p", ""): "Premium", ("p", "v2"): "PremiumV2", ("p", "v3"): "PremiumV3", ("p", "mv3"): "PremiumMV3",
    ("i", ""): "Isolated", ("i", "v2"): "IsolatedV2",
}
SIZE_KEYS = ("sku", "tier", "capacity")
SETTLED = ("Succeeded", "Failed", "Canceled")
# Between two reads of the plan while waiting; also the scale operation's polling interval when
# App Service sends no Retry-After (it usually does).
POLL_INTERVAL_S = 2.0


def tier_of(sku_name):
    """The pricing tier of a SKU name (``P1v3`` -> ``PremiumV3``), or None when it is not one of the known shapes."""
    match = _SKU_NAME.match(sku_name or "")
    if not match:
        return None
    return _TIER_BY_NAME.get((match.group("prefix").lower(), (match.group("suffix") or "").lower()))


def sku_rank(sku_name, tier=None):
    """(tier index, size number) of a SKU, the order floor and ceiling use; None when unknown."""
    tier = tier or tier_of(sku_name)
    match = _SKU_NAME.match(sku_name or "")
    tiers = [t.lower() for t in TIER_ORDER]
    if not match or not tier or tier.lower() not in tiers:
        return None
    return (tiers.index(tier.lower()), int(match.group("size")))


@dataclass(frozen=True)
class PlanSize:
    """A plan's size: what ``before`` returns and ``to`` takes back."""

    sku: str
    tier: str | None
    capacity: int

    def to_dict(self):
        return {"sku": self.sku, "tier": self.tier, "capacity": self.capacity}

    def same_as(self, other):
        return self.sku.lower() == other.sku.lower() and self.capacity == other.capacity

    def text(self):
        return "sku: %s (%s)\ncapacity: %s instance%s\n" % (
            self.sku, self.tier, self.capacity, "" if self.capacity == 1 else "s")


def _get(mapping, *path):
    """``mapping[a][b]`` for SDK models (mappings of the REST JSON) and plain dicts alike; None when absent."""
    value = mapping
    for key in path:
        if value is None:
            return None
        try:
            value = value[key]
        except (KeyError, TypeError):
            value = getattr(value, key, None)
    return value


def plan_size(plan):
    return PlanSize(sku=_get(plan, "sku", "name"), tier=_get(plan, "sku", "tier"),
                    capacity=int(_get(plan, "sku", "capacity") or 1))


def plan_state(plan):
    """What the result reports about a plan: its size, the instances serving, its provisioning state."""
    size = plan_size(plan)
    return dict(size.to_dict(), number_of_workers=_get(plan, "properties", "numberOfWorkers"),
                maximum_number_of_workers=_get(plan, "properties", "maximumNumberOfWorkers"),
                provisioning_state=_provisioning_state(plan),
                status=_get(plan, "properties", "status"))


def _provisioning_state(plan):
    state = _get(plan, "properties", "provisioningState")
    # azure-mgmt-web returns an enum member whose value is the wire string.
    return str(getattr(state, "value", state) or "Succeeded")


def plan_of_site(site, app):
    """(resource group, plan name) from an App Service app's ``serverFarmId``; the plan may be in another group."""
    farm = _get(site, "properties", "serverFarmId") or _get(site, "server_farm_id") or ""
    match = re.search(r"/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.Web/serverfarms/(?P<name>[^/]+)$", farm,
                      re.IGNORECASE)
    if not match:
        raise RollbackError("App Service app %s names no App Service plan (serverFarmId %r); give the plan with name."
                            % (app, farm or None))
    return match.group("rg"), match.group("name")


# --------------------------------------------------------------------------
# Azure calls
# --------------------------------------------------------------------------


class AppServicePlans:
    """One App Service plan's reads and its scale call; no decisions."""

    def __init__(self, client, resource_group, name, polling_interval=POLL_INTERVAL_S, app=None):
        self.client = client
        self.resource_group = resource_group
        self.name = name
        self.app = app
        self.polling_interval = polling_interval

    @classmethod
    def from_params(cls, params):
        """The plan named by ``name``, or the plan hosting the App Service app ``app`` (both in ``resource_group``)."""
        if bool(params.get("name")) == bool(params.get("app")):
            raise RollbackError("Name the plan with name, or the app it hosts with app (one of them).")
        settings = AzureSettings.from_params(params)
        credential = settings.credential()
        with arm_call("Signing in to Azure"):
            credential.get_token(settings.credential_scope)
        client = WebSiteManagementClient(credential, settings.subscription_id, **settings.client_kwargs())
        if params.get("app"):
            with arm_call("Reading App Service app %s" % params["app"],
                          not_found="App Service app '%s' not found in resource group '%s'." % (
                              params["app"], params["resource_group"])):
                site = client.web_apps.get(params["resource_group"], params["app"])
            resource_group, name = plan_of_site(site, params["app"])
            return cls(client, resource_group, name, app=params["app"])
        return cls(client, params["resource_group"], params["name"])

    def get(self):
        with arm_call("Reading App Service plan %s" % self.name,
                      not_found="App Service plan '%s' not found in resource group '%s'." % (
                          self.name, self.resource_group)):
            return self.client.app_service_plans.get(self.resource_group, self.name)

    def selectable_skus(self):
        """The SKUs the plan can take, from ``GET .../serverfarms/{name}/skus``.

        The REST spec types the answer as a bare object; App Service returns
        ``{"resourceType", "skus": [{"sku": {"name", "tier"}, "capacity": {"minimum", "maximum", ...}}]}``.
        Returns ``[{"name", "tier", "minimum", "maximum"}]``.
        """
        with arm_call("Listing the SKUs App Service plan %s can take" % self.name):
            answer = self.client.app_service_plans.get_server_farm_skus(self.resource_group, self.name)
        skus = []
        for item in _get(answer, "skus") or _get(answer, "value") or []:
            sku = _get(item, "sku") or item
            name = _get(sku, "name")
            if not name:
                continue
            skus.append({"name": name, "tier": _get(sku, "tier") or tier_of(name),
                         "minimum": _get(item, "capacity", "minimum") or 1,
                         "maximum": _get(item, "capacity", "maximum")})
        return skus

    def begin_scale(self, plan, size):
        """PUT the plan with the new SKU and capacity (what ``az appservice plan update`` sends); a poller."""
        plan["sku"] = {"name": size.sku, "tier": size.tier, "capacity": size.capacity}
        with arm_call("Scaling App Service plan %s to %s x %s" % (self.name, size.sku, size.capacity)):
            return self.client.app_service_plans.begin_create_or_update(
                self.resource_group, self.name, plan, polling_interval=self.polling_interval)


# --------------------------------------------------------------------------
# The decision
# --------------------------------------------------------------------------


def _limit(value, option):
    """A floor or ceiling: ``{sku, capacity}`` (either may be left out); None when not given."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise RollbackError("%s must be a dictionary with sku and/or capacity, for example {sku: P1v3, capacity: 2}."
                            % option)
    unknown = sorted(set(value) - {"sku", "capacity"})
    if unknown:
        raise RollbackError("%s takes sku and capacity only, not %s." % (option, ", ".join(unknown)))
    limit = {"sku": value.get("sku"), "capacity": value.get("capacity")}
    if limit["capacity"] is not None:
        limit["capacity"] = whole_number(limit["capacity"], "%s.capacity" % option)
    if limit["sku"] is not None and sku_rank(limit["sku"]) is None:
        raise RollbackError("%s.sku %r is not an App Service plan SKU this module can compare (F1, B1-B3, S1-S3, "
                            "P1v2-P3v2, P0v3-P3v3, P1mv3-P5mv3, I1v2-I6v2)." % (option, limit["sku"]))
    return limit


@dataclass
class ScaleRequest:
    """What the task asks for, checked for shape before Azure is asked anything."""

    sku: str | None = None
    capacity: int | None = None
    step: int | None = None
    sku_step: int | None = None
    floor: dict | None = None
    ceiling: dict | None = None

    @classmethod
    def from_params(cls, params):
        to = params.get("to")
        given = [o for o in ("sku", "capacity", "step", "sku_step") if params.get(o) is not None]
        if to is not None:
            if given:
                raise RollbackError("to restores a recorded size; do not combine it with %s." % ", ".join(given))
            if not isinstance(to, dict):
                raise RollbackError("to must be a size recorded by an earlier run (its before), for example "
                                    "{sku: P1v3, capacity: 2}.")
            unknown = sorted(set(to) - set(SIZE_KEYS))
            if unknown:
                raise RollbackError("to takes sku, tier and capacity (the before of an earlier run), not %s."
                                    % ", ".join(unknown))
            if to.get("sku") is None and to.get("capacity") is None:
                raise RollbackError("to names neither a sku nor a capacity: nothing to restore.")
            request = cls(sku=to.get("sku"), capacity=to.get("capacity"))
            if request.capacity is not None:
                request.capacity = whole_number(request.capacity, "to.capacity")
            if to.get("tier") and request.sku and tier_of(request.sku) and \
                    to["tier"].lower() != tier_of(request.sku).lower():
                raise RollbackError("to says sku %s is in tier %s, but %s is a %s SKU." % (
                    request.sku, to["tier"], request.sku, tier_of(request.sku)))
        else:
            if not given:
                raise RollbackError("Say what size to scale to: sku, capacity, step, sku_step, or to (a recorded size).")
            if params.get("capacity") is not None and params.get("step") is not None:
                raise RollbackError("capacity and step both set the instance count: give one of them.")
            if params.get("sku") is not None and params.get("sku_step") is not None:
                raise RollbackError("sku and sku_step both set the SKU: give one of them.")
            request = cls(sku=params.get("sku"), capacity=params.get("capacity"), step=params.get("step"),
                          sku_step=params.get("sku_step"))
        if request.capacity is not None and request.capacity < 1:
            raise RollbackError("capacity must be 1 or more (an App Service plan cannot run 0 instances), not %s."
                                % request.capacity)
        request.floor = _limit(params.get("floor"), "floor")
        request.ceiling = _limit(params.get("ceiling"), "ceiling")
        if request.floor and request.ceiling:
            low, high = request.floor, request.ceiling
            if low["capacity"] is not None and high["capacity"] is not None and low["capacity"] > high["capacity"]:
                raise RollbackError("floor.capacity %s is above ceiling.capacity %s." % (low["capacity"], high["capacity"]))
            if low["sku"] and high["sku"] and sku_rank(low["sku"]) > sku_rank(high["sku"]):
                raise RollbackError("floor.sku %s is above ceiling.sku %s." % (low["sku"], high["sku"]))
        return request


class PlanScale:
    """Bring one plan to the size asked for, within floor and ceiling, and wait until it serves."""

    def __init__(self, plans, check_mode=False, wait_timeout=600, sleep=time.sleep, clock=time.monotonic):
        self.plans = plans
        self.check_mode = check_mode
        self.wait_timeout = wait_timeout
        self._sleep = sleep
        self._clock = clock

    # ---- deciding ----------------------------------------------------------

    def target(self, request, current, selectable):
        """The size to reach, validated against the plan's SKUs, their limits, floor and ceiling."""
        by_name = {s["name"].lower(): s for s in selectable}
        offered = ", ".join(s["name"] for s in selectable) or "none"
        if request.sku_step:
            sku = self._stepped_sku(current, request.sku_step, selectable)
        else:
            sku = request.sku or current.sku
        entry = by_name.get(sku.lower())
        if entry is None:
            if request.sku is None and request.sku_step is None:
                raise RollbackError("App Service plan %s runs SKU %s, which is not in its own list of SKUs (%s)."
                                    % (self.plans.name, current.sku, offered))
            known = tier_of(sku)
            why = ("it is not an App Service plan SKU" if known is None else
                   "App Service offers no %s to this plan (its scale unit or region does not have it)" % known)
            raise RollbackError("SKU %s cannot be used for App Service plan %s: %s. The SKUs it can take: %s."
                                % (sku, self.plans.name, why, offered), selectable_skus=[s["name"] for s in selectable])
        if request.step:
            capacity = current.capacity + request.step
        elif request.capacity is not None:
            capacity = request.capacity
        else:
            capacity = current.capacity
        target = PlanSize(sku=entry["name"], tier=entry["tier"], capacity=capacity)
        if capacity < max(entry["minimum"] or 1, 1):
            raise RollbackError("Scaling App Service plan %s to %s instance(s) is refused: it needs at least %s."
                                % (self.plans.name, capacity, max(entry["minimum"] or 1, 1)))
        if entry["maximum"] is not None and capacity > entry["maximum"]:
            raise RollbackError("Scaling App Service plan %s to %s instances is refused: SKU %s (%s) allows at most %s."
                                % (self.plans.name, capacity, entry["name"], entry["tier"], entry["maximum"]))
        self._check_limits(request, target)
        return target

    def _stepped_sku(self, current, sku_step, selectable):
        """The SKU ``sku_step`` sizes up (or down) the current one's tier, as the plan's SKU list orders them."""
        same_tier = sorted((s for s in selectable if (s["tier"] or "").lower() == (current.tier or "").lower()),
                           key=lambda s: sku_rank(s["name"], s["tier"]) or (0, 0))
        names = [s["name"].lower() for s in same_tier]
        if current.sku.lower() not in names:
            raise RollbackError("App Service plan %s runs %s, which its SKU list does not order; give sku instead of "
                                "sku_step." % (self.plans.name, current.sku))
        index = names.index(current.sku.lower()) + sku_step
        if not 0 <= index < len(same_tier):
            raise RollbackError("sku_step %+d from %s leaves the %s tier (%s); give the SKU of another tier with sku."
                                % (sku_step, current.sku, current.tier, ", ".join(s["name"] for s in same_tier)))
        return same_tier[index]["name"]

    def _check_limits(self, request, target):
        floor, ceiling = request.floor or {}, request.ceiling or {}
        rank = sku_rank(target.sku, target.tier)
        problems = []
        if floor.get("capacity") is not None and target.capacity < floor["capacity"]:
            problems.append("%s instances is below the floor of %s" % (target.capacity, floor["capacity"]))
        if ceiling.get("capacity") is not None and target.capacity > ceiling["capacity"]:
            problems.append("%s instances is above the ceiling of %s" % (target.capacity, ceiling["capacity"]))
        for limit, word, outside in ((floor, "floor", lambda a, b: a < b), (ceiling, "ceiling", lambda a, b: a > b)):
            if limit.get("sku"):
                if rank is None:
                    problems.append("SKU %s cannot be compared with the %s %s" % (target.sku, word, limit["sku"]))
                elif outside(rank, sku_rank(limit["sku"])):
                    problems.append("SKU %s is %s the %s of %s" % (
                        target.sku, "below" if word == "floor" else "above", word, limit["sku"]))
        if problems:
            raise RollbackError("Scaling App Service plan %s to %s x %s is refused: %s. Change floor/ceiling in the "
                                "inventory if this size is really wanted." % (
                                    self.plans.name, target.sku, target.capacity, "; ".join(problems)),
                                requested=target.to_dict(), floor=request.floor, ceiling=request.ceiling)

    # ---- waiting -----------------------------------------------------------

    def _remaining(self, deadline):
        return max(deadline - self._clock(), 0)

    def _wait_settled(self, plan, deadline, progress, started):
        """Wait out an update already running on the plan (another run's scale) before deciding."""
        while _provisioning_state(plan) not in SETTLED:
            if self._remaining(deadline) <= 0:
                raise OperationTimeout(
                    "App Service plan %s was still being updated (provisioningState %s) after %s s; it may still "
                    "be running in Azure. Nothing was changed by this task." % (
                        self.plans.name, _provisioning_state(plan), self.wait_timeout),
                    plan_state=plan_state(plan), progress=progress)
            self._log(progress, started, "waiting for a running update (%s)" % _provisioning_state(plan))
            self._sleep(min(POLL_INTERVAL_S, self._remaining(deadline)))
            plan = self.plans.get()
        return plan

    def _wait_serving(self, target, deadline, progress, started):
        """Until the plan is Succeeded at the target size and numberOfWorkers reached the capacity."""
        while True:
            plan = self.plans.get()
            state = plan_state(plan)
            size = plan_size(plan)
            workers = state["number_of_workers"]
            if (_provisioning_state(plan) == "Succeeded" and size.same_as(target)
                    and (workers is None or workers >= target.capacity)):
                return plan
            if self._remaining(deadline) <= 0:
                raise OperationTimeout(
                    "App Service plan %s did not serve at %s x %s within %s s (now %s x %s, %s worker(s) serving, "
                    "provisioningState %s); it may still be scaling in Azure." % (
                        self.plans.name, target.sku, target.capacity, self.wait_timeout, size.sku, size.capacity,
                        workers, _provisioning_state(plan)),
                    plan_state=state, requested=target.to_dict(), progress=progress)
            self._log(progress, started, "%s worker(s) of %s serving" % (workers, target.capacity))
            self._sleep(min(POLL_INTERVAL_S, self._remaining(deadline)))

    def _log(self, progress, started, status):
        if not progress or progress[-1]["status"] != status:
            progress.append({"elapsed_s": round(self._clock() - started, 2), "status": status})

    # ---- the procedure -----------------------------------------------------

    def run(self, request):
        """Returns ``(changed, result)``; every refusal comes before the first write."""
        if self.wait_timeout <= 0:
            raise RollbackError("wait_timeout must be more than 0 seconds.")
        started = self._clock()
        deadline = started + self.wait_timeout
        progress = []
        plan = self.plans.get()
        plan_id = _get(plan, "id")
        if not self.check_mode:
            plan = self._wait_settled(plan, deadline, progress, started)
        current = plan_size(plan)
        target = self.target(request, current, self.plans.selectable_skus())
        result = {
            "plan_id": plan_id,
            "resource_group": self.plans.resource_group,
            "name": self.plans.name,
            "app": getattr(self.plans, "app", None),
            "before": current.to_dict(),
            "requested": target.to_dict(),
            "changes": self._changes(current, target),
            "progress": progress,
            "diff": {"before": current.text(), "after": target.text()},
        }
        changed = not current.same_as(target)
        if self.check_mode:
            result.update(after=target.to_dict(), number_of_workers=plan_state(plan)["number_of_workers"], waited_s=0.0)
            return changed, result
        if changed:
            poller = self.plans.begin_scale(plan, target)
            what = "Scaling App Service plan %s to %s x %s" % (self.plans.name, target.sku, target.capacity)
            try:
                with arm_call(what, before=current.to_dict(), requested=target.to_dict()):
                    progress.extend(wait_for_operation(poller, round(max(self._remaining(deadline), 0.1), 1), what))
            except RollbackError as error:
                # Say where the plan was left: a failed scale leaves it as it was; one that outlasted the
                # deadline is still running in Azure, so the task did change something.
                details = dict(error.details, before=current.to_dict(), plan_state=self._state_now(),
                               progress=progress + error.details.get("progress", []))
                if isinstance(error, OperationTimeout):
                    details["changed"] = True
                raise type(error)("%s The plan is now %s." % (error.message, _size_words(details["plan_state"])),
                                  **details) from error
        final = self._wait_serving(target, deadline, progress, started)
        state = plan_state(final)
        result.update(after=plan_size(final).to_dict(), number_of_workers=state["number_of_workers"],
                      waited_s=round(self._clock() - started, 2))
        return changed, result

    def _state_now(self):
        try:
            return plan_state(self.plans.get())
        except RollbackError as error:
            return {"unknown": error.message}

    @staticmethod
    def _changes(current, target):
        changes = []
        if current.sku.lower() != target.sku.lower():
            rank_now, rank_then = sku_rank(current.sku, current.tier), sku_rank(target.sku, target.tier)
            way = "up" if rank_now and rank_then and rank_then > rank_now else "down"
            changes.append("scale %s: sku %s -> %s" % (way, current.sku, target.sku))
        if current.capacity != target.capacity:
            changes.append("scale %s: capacity %s -> %s" % (
                "out" if target.capacity > current.capacity else "in", current.capacity, target.capacity))
        return changes


def _size_words(state):
    if "sku" not in state:
        return "in an unknown state (%s)" % state.get("unknown")
    return "%s x %s (%s worker(s) serving, provisioningState %s)" % (
        state["sku"], state["capacity"], state["number_of_workers"], state["provisioning_state"])


def scale_plan(params, check_mode=False, connect=AppServicePlans.from_params):
    """The module's work: ``(changed, result)``. The request is checked before Azure is asked anything."""
    request = ScaleRequest.from_params(params)
    return PlanScale(connect(params), check_mode=check_mode, wait_timeout=params["wait_timeout"]).run(request)
