# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.sre.rollback.plugins.module_utils.appservice_plan import (
    PlanScale,
    PlanSize,
    ScaleRequest,
    plan_of_site,
    sku_rank,
    tier_of,
)
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError
from ansible_collections.sre.rollback.plugins.module_utils.operation_wait import OperationTimeout

SKUS = [
    {"name": "F1", "tier": "Free", "minimum": 1, "maximum": 1},
    {"name": "B1", "tier": "Basic", "minimum": 1, "maximum": 3},
    {"name": "S1", "tier": "Standard", "minimum": 1, "maximum": 10},
    {"name": "S2", "tier": "Standard", "minimum": 1, "maximum": 10},
    {"name": "P2v3", "tier": "PremiumV3", "minimum": 1, "maximum": 30},
    {"name": "P1v3", "tier": "PremiumV3", "minimum": 1, "maximum": 30},
    {"name": "P3v3", "tier": "PremiumV3", "minimum": 1, "maximum": 30},
]


def params(**kwargs):
    base = dict(sku=None, capacity=None, step=None, sku_step=None, to=None, floor=None, ceiling=None,
                wait_timeout=60)
    base.update(kwargs)
    return base


def plan_json(sku="P1v3", tier="PremiumV3", capacity=2, workers=None, state="Succeeded"):
    return {"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/serverfarms/asp",
            "sku": {"name": sku, "tier": tier, "capacity": capacity},
            "properties": {"numberOfWorkers": capacity if workers is None else workers,
                           "maximumNumberOfWorkers": 30, "provisioningState": state, "status": "Ready"}}


class FakePoller:
    def __init__(self, plans, fail=None):
        self.plans = plans
        self.fail = fail

    def status(self):
        return "Succeeded"

    def done(self):
        return True

    def wait(self, timeout=None):
        pass

    def result(self):
        if self.fail:
            raise self.fail
        return self.plans.reads[-1]


class FakePlans:
    """Plans whose GETs answer from a script; begin_scale records the size sent."""

    resource_group = "rg"
    name = "asp"

    def __init__(self, *reads, skus=None, fail=None, after_scale=()):
        self.reads = list(reads)
        self.skus = SKUS if skus is None else skus
        self.scaled = []
        self.fail = fail
        self.after_scale = list(after_scale)
        self.gets = 0

    def get(self):
        self.gets += 1
        if len(self.reads) > 1:
            return self.reads.pop(0)
        return self.reads[0]

    def selectable_skus(self):
        return self.skus

    def begin_scale(self, plan, size):
        self.scaled.append(size)
        if self.after_scale:
            self.reads = list(self.after_scale)
        return FakePoller(self, self.fail)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def run(plans, check_mode=False, wait_timeout=60, **kwargs):
    clock = Clock()
    scale = PlanScale(plans, check_mode=check_mode, wait_timeout=wait_timeout, sleep=clock.sleep, clock=clock)
    return scale.run(ScaleRequest.from_params(params(**kwargs)))


# ---- SKU names and order -------------------------------------------------------------------


@pytest.mark.parametrize("name,tier", [("P1v3", "PremiumV3"), ("p2V2", "PremiumV2"), ("S3", "Standard"),
                                       ("B1", "Basic"), ("F1", "Free"), ("P1mv3", "PremiumMV3"),
                                       ("I2v2", "IsolatedV2"), ("P9x", None), ("EP1", None), ("", None)])
def test_tier_of(name, tier):
    assert tier_of(name) == tier


def test_sku_rank_orders_by_tier_then_size():
    order = ["F1", "B1", "B3", "S1", "S3", "P1v2", "P0v3", "P1v3", "P3v3"]
    ranks = [sku_rank(name) for name in order]
    assert ranks == sorted(ranks)
    assert sku_rank("EP1") is None


# ---- request shape, before any Azure call --------------------------------------------------


@pytest.mark.parametrize("kwargs,message", [
    ({}, "Say what size to scale to"),
    ({"capacity": 2, "step": 1}, "capacity and step both"),
    ({"sku": "S1", "sku_step": 1}, "sku and sku_step both"),
    ({"capacity": 0}, "capacity must be 1 or more"),
    ({"to": {"sku": "S1"}, "capacity": 3}, "do not combine it with capacity"),
    ({"to": {"instances": 3}}, "not instances"),
    ({"to": {}}, "names neither a sku nor a capacity"),
    ({"to": {"sku": "P1v3", "tier": "Standard"}}, "is a PremiumV3 SKU"),
    ({"to": {"capacity": "two"}}, "to.capacity must be a whole number"),
    ({"capacity": 2, "floor": {"capacity": 3}, "ceiling": {"capacity": 2}}, "floor.capacity 3 is above"),
    ({"capacity": 2, "floor": {"sku": "P2v3"}, "ceiling": {"sku": "S1"}}, "floor.sku P2v3 is above"),
    ({"capacity": 2, "floor": {"size": 1}}, "not size"),
    ({"capacity": 2, "ceiling": {"sku": "EP1"}}, "this module can compare"),
    ({"capacity": 2, "ceiling": 10}, "must be a dictionary"),
])
def test_request_refusals(kwargs, message):
    with pytest.raises(RollbackError, match=message):
        ScaleRequest.from_params(params(**kwargs))


def test_to_takes_a_before_record_back():
    request = ScaleRequest.from_params(params(to={"sku": "P1v3", "tier": "PremiumV3", "capacity": 2}))
    assert (request.sku, request.capacity) == ("P1v3", 2)


# ---- deciding and scaling ------------------------------------------------------------------


def test_check_mode_predicts_and_writes_nothing():
    plans = FakePlans(plan_json())
    changed, result = run(plans, check_mode=True, sku="p2v3", step=2)
    assert changed
    assert plans.scaled == []
    assert result["before"] == {"sku": "P1v3", "tier": "PremiumV3", "capacity": 2}
    assert result["after"] == result["requested"] == {"sku": "P2v3", "tier": "PremiumV3", "capacity": 4}
    assert result["changes"] == ["scale up: sku P1v3 -> P2v3", "scale out: capacity 2 -> 4"]
    assert "capacity: 4 instances" in result["diff"]["after"]


def test_scale_waits_until_workers_serve():
    plans = FakePlans(plan_json(), after_scale=[plan_json("P1v3", capacity=4, workers=2),
                                                plan_json("P1v3", capacity=4, workers=3),
                                                plan_json("P1v3", capacity=4, workers=4)])
    changed, result = run(plans, capacity=4)
    assert changed
    assert plans.scaled == [PlanSize("P1v3", "PremiumV3", 4)]
    assert result["after"]["capacity"] == 4 and result["number_of_workers"] == 4
    assert [p["status"] for p in result["progress"]][-1] == "3 worker(s) of 4 serving"
    assert result["waited_s"] == 4.0  # two polls of POLL_INTERVAL_S


def test_same_size_is_unchanged_and_sends_nothing():
    plans = FakePlans(plan_json())
    changed, result = run(plans, to={"sku": "p1v3", "capacity": 2})
    assert not changed
    assert plans.scaled == []
    assert result["changes"] == []


def test_sku_step_moves_within_the_tier_in_size_order():
    plans = FakePlans(plan_json(), after_scale=[plan_json("P2v3", capacity=2)])
    changed, result = run(plans, sku_step=1)
    assert changed and result["requested"]["sku"] == "P2v3"
    with pytest.raises(RollbackError, match="leaves the PremiumV3 tier"):
        run(FakePlans(plan_json("P3v3")), sku_step=1)


def test_unknown_or_unoffered_sku_is_refused_with_the_list():
    with pytest.raises(RollbackError, match="not an App Service plan SKU. The SKUs it can take: F1, B1") as err:
        run(FakePlans(plan_json()), sku="P9z")
    assert "P1v3" in err.value.details["selectable_skus"]
    with pytest.raises(RollbackError, match="offers no PremiumV2 to this plan"):
        run(FakePlans(plan_json()), sku="P1v2")


def test_capacity_beyond_the_sku_limit_is_refused():
    with pytest.raises(RollbackError, match="SKU B1 \\(Basic\\) allows at most 3"):
        run(FakePlans(plan_json()), sku="B1", capacity=4)
    with pytest.raises(RollbackError, match="needs at least 1"):
        run(FakePlans(plan_json(capacity=1)), step=-1)


@pytest.mark.parametrize("kwargs,message", [
    ({"step": -1, "floor": {"capacity": 2}}, "1 instances is below the floor of 2"),
    ({"capacity": 12, "ceiling": {"capacity": 10}}, "12 instances is above the ceiling of 10"),
    ({"sku": "S2", "floor": {"sku": "P1v3"}}, "SKU S2 is below the floor of P1v3"),
    ({"sku": "P3v3", "ceiling": {"sku": "P2v3", "capacity": 10}}, "SKU P3v3 is above the ceiling of P2v3"),
])
def test_floor_and_ceiling_refuse_before_any_write(kwargs, message):
    plans = FakePlans(plan_json())
    with pytest.raises(RollbackError, match=message):
        run(plans, **kwargs)
    assert plans.scaled == []


def test_a_running_update_is_waited_out_before_deciding():
    plans = FakePlans(plan_json(state="InProgress"), plan_json(state="InProgress"), plan_json(capacity=3))
    changed, result = run(plans, capacity=3)
    assert not changed  # the other run's scale already reached the size asked for
    assert result["progress"][0]["status"] == "waiting for a running update (InProgress)"


def test_a_running_update_that_outlasts_the_deadline_changes_nothing():
    plans = FakePlans(plan_json(state="InProgress"))
    with pytest.raises(OperationTimeout, match="still being updated"):
        run(plans, capacity=3, wait_timeout=12)
    assert plans.scaled == []


def test_workers_that_never_come_fail_with_the_state():
    plans = FakePlans(plan_json(), after_scale=[plan_json(capacity=4, workers=2)])
    with pytest.raises(OperationTimeout, match="did not serve at P1v3 x 4 within 20 s") as err:
        run(plans, capacity=4, wait_timeout=20)
    assert err.value.details["plan_state"]["number_of_workers"] == 2


def test_a_failed_scale_reports_the_plan_as_it_is():
    failure = RollbackError("the operation ended Failed")
    plans = FakePlans(plan_json(), fail=failure)
    with pytest.raises(RollbackError, match="The plan is now P1v3 x 2") as err:
        run(plans, capacity=5)
    assert err.value.details["before"] == {"sku": "P1v3", "tier": "PremiumV3", "capacity": 2}
    assert err.value.details["plan_state"]["capacity"] == 2


def test_sdk_model_values_are_read_like_dicts():
    class Enumish:
        value = "Succeeded"

    plan = plan_json()
    plan["properties"]["provisioningState"] = Enumish()
    changed, _result = run(FakePlans(plan), capacity=2)
    assert not changed


def test_plan_of_site_reads_the_server_farm_id():
    farm = "/subscriptions/s/resourceGroups/rg-plans/providers/Microsoft.Web/serverfarms/asp-shared"
    assert plan_of_site({"properties": {"serverFarmId": farm}}, "app") == ("rg-plans", "asp-shared")
    with pytest.raises(RollbackError, match="names no App Service plan"):
        plan_of_site({"properties": {}}, "app")


def test_step_zero_reads_the_size_and_changes_nothing():
    plans = FakePlans(plan_json())
    changed, result = run(plans, check_mode=True, step=0, floor={}, ceiling={})
    assert not changed and plans.scaled == []
    assert result["before"] == result["after"] == {"sku": "P1v3", "tier": "PremiumV3", "capacity": 2}
