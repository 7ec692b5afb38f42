"""Run a real Prometheus server as a child of the sandbox, on loopback.

It scrapes the sandbox's metrics exporter (the apps' request counters and
their plans' CPU and memory) every second over HTTPS, trusting the sandbox CA.
Only that loopback target is configured, so it reaches nothing else; the
admin API is on so a sandbox reset can delete every series. Like redis-server,
it never outlives the sandbox (`children.ChildServer`).
"""

import json
import os
import shutil
import urllib.error
import urllib.request

from ..children import ChildServer, free_port


def binary():
    return shutil.which("prometheus") or "/usr/bin/prometheus"


class PrometheusProcess(ChildServer):
    name = "prometheus"
    ready_timeout_s = 20.0

    def __init__(self, work_dir, target_port, ca_file, scrape_interval_s=1):
        super().__init__(work_dir, "prometheus.log")
        self.target_port = target_port
        self.ca_file = ca_file
        self.scrape_interval_s = scrape_interval_s
        self.port = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def config(self):
        interval = f"{self.scrape_interval_s}s"
        return {
            "global": {"scrape_interval": interval, "evaluation_interval": interval, "scrape_timeout": interval},
            "scrape_configs": [{
                "job_name": "sandbox-apps",
                "scheme": "https",
                "tls_config": {"ca_file": self.ca_file},
                "static_configs": [{"targets": [f"127.0.0.1:{self.target_port}"]}],
            }],
        }

    def pick_ports(self):
        self.port = free_port()

    def server_argv(self):
        return [
            binary(),
            f"--config.file={os.path.join(self.work_dir, 'prometheus.yml')}",
            f"--storage.tsdb.path={os.path.join(self.work_dir, 'data')}",
            "--storage.tsdb.retention.time=6h",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-admin-api",
            "--log.level=warn",
        ]

    def start(self, attempts=3):
        os.makedirs(self.work_dir, exist_ok=True)
        shutil.rmtree(os.path.join(self.work_dir, "data"), ignore_errors=True)  # every start is a fresh TSDB
        with open(os.path.join(self.work_dir, "prometheus.yml"), "w", encoding="utf-8") as fh:
            json.dump(self.config(), fh, indent=2)  # JSON is YAML
        return super().start(attempts)

    def answers(self):
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as response:
                return response.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def delete_all_series(self):
        """What a sandbox reset does: forget every sample (the admin API), so old traffic cannot fire a trigger."""
        for path in ("/api/v1/admin/tsdb/delete_series?match[]=%7B__name__%3D~%22.%2B%22%7D",
                     "/api/v1/admin/tsdb/clean_tombstones"):
            request = urllib.request.Request(self.url + path, method="POST")
            with urllib.request.urlopen(request, timeout=10):
                pass
