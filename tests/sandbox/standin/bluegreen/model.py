"""State of the blue/green deployment controller (mvp011's `localhost:8080` API).

Two environments, each running one version (or none). Traffic goes to the
active one (`current`). A rollback switches traffic to the environment that was
active before; the switch takes `switch_duration_s` and is atomic at its end
(status `switching` meanwhile, traffic still on the old environment). Every
deploy, switch and rollback is appended to the history, oldest first, so the
runbook's `.deploymentHistory[-5:]` is the five most recent events.

Versions come from a catalog (`{"2.4.0": {"healthy": false, "latency_ms": 0}}`);
a version not in it is healthy and fast. A bad version makes `/health` report
`unhealthy` while its environment is active, so a rollback really changes what
health reports.
"""

import datetime
import threading

ENVIRONMENTS = ("blue", "green")


def stamp(ts=None):
    ts = ts or datetime.datetime.now(datetime.timezone.utc)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class ControllerError(Exception):
    """An error the controller answers with `status` and `{"error", "message"}`."""

    def __init__(self, status, error, message, **extra):
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.extra = extra


class Controller:
    def __init__(self, seed, lock):
        self.lock = lock
        self.current = seed.get("current_environment", "green")
        self.environments = {}
        for name in ENVIRONMENTS:
            env = (seed.get("environments") or {}).get(name) or {}
            self.environments[name] = {"version": env.get("version"), "deployedAt": env.get("deployed_at")}
        self.history = [dict(h) for h in seed.get("history", [])]
        self.versions = {k: dict(v) for k, v in (seed.get("versions") or {}).items()}
        self.settings = {"switch_duration_s": 1.0, "api_token": None}
        self.settings.update(seed.get("settings") or {})
        self.switching = None       # {"action", "from", "to", "startedAt"} while a switch runs
        self.last_operation = None  # the last rollback/switch and how it ended
        # Controller-level faults: [{"kind": "no_switch"|"switch_fail", "remaining": n}]
        self.controller_faults = []
        self._timer = None
        self._generation = 0        # a reset invalidates switches still pending

    # -- what the API reports -------------------------------------------------------------
    def version_info(self, version):
        entry = self.versions.get(version) or {}
        return {"healthy": bool(entry.get("healthy", True)), "latency_ms": int(entry.get("latency_ms", 0) or 0)}

    def env_health(self, name):
        version = self.environments[name]["version"]
        if version is None:
            return "empty"
        return "healthy" if self.version_info(version)["healthy"] else "unhealthy"

    def status(self):
        body = {
            "currentEnvironment": self.current,
            "status": "switching" if self.switching else "stable",
            "environments": {
                name: {"version": env["version"], "health": self.env_health(name), "deployedAt": env["deployedAt"],
                       "active": name == self.current}
                for name, env in self.environments.items()
            },
            "deploymentHistory": [dict(h) for h in self.history],
        }
        if self.switching:
            body["switching"] = dict(self.switching)
        if self.last_operation:
            body["lastOperation"] = dict(self.last_operation)
        return body

    def active(self):
        """(environment, version, version info) of the environment serving traffic."""
        version = self.environments[self.current]["version"]
        return self.current, version, self.version_info(version)

    def previous_environment(self):
        return next(name for name in ENVIRONMENTS if name != self.current)

    # -- the rollback ------------------------------------------------------------------------
    def rollback(self):
        """Start switching traffic back to the previous environment; returns (status, body)."""
        if self.switching:
            raise ControllerError(409, "SwitchInProgress",
                                  f"A switch from {self.switching['from']} to {self.switching['to']} is in progress.",
                                  switching=dict(self.switching))
        target = self.previous_environment()
        if self.environments[target]["version"] is None:
            raise ControllerError(409, "NothingToRollBackTo",
                                  f"The {target} environment has no deployment: nothing to roll back to; "
                                  f"{self.current} stays active.", currentEnvironment=self.current)
        operation = {
            "action": "rollback",
            "from": self.current,
            "to": target,
            "fromVersion": self.environments[self.current]["version"],
            "toVersion": self.environments[target]["version"],
            "startedAt": stamp(),
        }
        fault = self._take_fault()
        if fault == "no_switch":
            # Accepted, answered like a real switch, and then nothing happens at all.
            return 202, {**operation, "status": "switching"}
        duration = float(self.settings["switch_duration_s"])
        if duration <= 0 and fault is None:
            self._finish(operation, failed=False)
            return 200, {**operation, "status": "completed", "finishedAt": self.last_operation["finishedAt"]}
        self.switching = operation
        self.last_operation = {**operation, "status": "switching"}
        generation = self._generation
        self._timer = threading.Timer(max(duration, 0.0), self._complete, (generation, operation, fault == "switch_fail"))
        self._timer.daemon = True
        self._timer.start()
        return 202, {**operation, "status": "switching"}

    def _complete(self, generation, operation, failed):
        with self.lock:
            if generation != self._generation:
                return
            self._finish(operation, failed)

    def _finish(self, operation, failed):
        self.switching = None
        now = stamp()
        if failed:
            self.last_operation = {**operation, "status": "failed", "finishedAt": now,
                                   "message": f"Switching traffic to {operation['to']} failed; "
                                              f"{operation['from']} stays active."}
            return
        self.current = operation["to"]
        self.history.append({"environment": operation["to"], "version": operation["toVersion"],
                             "timestamp": now, "action": operation["action"]})
        self.last_operation = {**operation, "status": "succeeded", "finishedAt": now}

    def _take_fault(self):
        for fault in self.controller_faults:
            fault["remaining"] -= 1
            if fault["remaining"] <= 0:
                self.controller_faults.remove(fault)
            return fault["kind"]
        return None

    # -- admin -------------------------------------------------------------------------------
    def deploy(self, version, switch=True, environment=None):
        """Deploy `version` to the idle environment (or `environment`) and, by default, switch to it."""
        if self.switching:
            raise ControllerError(409, "SwitchInProgress", "A switch is in progress.")
        target = environment or self.previous_environment()
        if target not in ENVIRONMENTS:
            raise ControllerError(400, "UnknownEnvironment", f"environment must be one of {', '.join(ENVIRONMENTS)}")
        now = stamp()
        self.environments[target] = {"version": version, "deployedAt": now}
        self.history.append({"environment": target, "version": version, "timestamp": now, "action": "deploy"})
        if switch and target != self.current:
            self.history.append({"environment": target, "version": version, "timestamp": now, "action": "switch"})
            self.last_operation = {"action": "switch", "from": self.current, "to": target,
                                   "fromVersion": self.environments[self.current]["version"], "toVersion": version,
                                   "startedAt": now, "finishedAt": now, "status": "succeeded"}
            self.current = target

    def clear(self, environment):
        if environment not in ENVIRONMENTS:
            raise ControllerError(404, "UnknownEnvironment", f"environment must be one of {', '.join(ENVIRONMENTS)}")
        if environment == self.current:
            raise ControllerError(409, "EnvironmentActive", f"{environment} is serving traffic and cannot be emptied.")
        self.environments[environment] = {"version": None, "deployedAt": None}

    def stop(self):
        self._generation += 1
        if self._timer:
            self._timer.cancel()
