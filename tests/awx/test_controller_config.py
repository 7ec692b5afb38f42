"""awx/: the controller configuration as code.

The survey specs are checked against AWX's survey_spec format and against the playbooks they
launch (every variable is one the playbook reads, environments are inventory groups with hosts the
playbook acts on, severities are the decision matrix's, choices are ones the playbook accepts), the
credential types against what the modules and the inventory read, the P1 workflow's order (plan,
approval, run), and the configure playbook passes --syntax-check and ansible-lint with awx.awx.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from jinja2 import Environment, meta

ROOT = Path(__file__).resolve().parents[2]
AWX = ROOT / "awx"
PLAYBOOKS = ROOT / "playbooks"
BIN = Path(sys.executable).parent
SURVEY_TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}
CONDITIONAL_KEYS = {"when", "that", "failed_when", "changed_when", "until"}
# Environments in the surveys: the real ones. sandbox is the local test estate, not launched from AWX.
CONTROLLER_ENVIRONMENTS = ["production", "staging"]


class SafeLoaderWithUnsafe(yaml.SafeLoader):
    """Reads Ansible's !unsafe tag as the plain string it marks."""


SafeLoaderWithUnsafe.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def load(path):
    return yaml.load(Path(path).read_text(), Loader=SafeLoaderWithUnsafe)


CONTROLLER = load(AWX / "vars" / "controller.yml")
CONFIGURE = load(AWX / "configure-controller.yml")
INVENTORY = load(ROOT / "inventories" / "hosts.yml")
SURVEYS = {path.stem: json.loads(path.read_text()) for path in sorted((AWX / "surveys").glob("*.json"))}
WORKFLOW_SURVEY = "workflow-p1-rollback"


class AnyName(dict):
    """Ansible's filters and tests, as far as parsing cares: every name exists."""

    def __contains__(self, name):
        return True

    def __missing__(self, name):
        return lambda *args, **kwargs: None

    def get(self, name, default=None):
        return self[name]


JINJA = Environment()
JINJA.filters = AnyName(JINJA.filters)
JINJA.tests = AnyName(JINJA.tests)


def inventory_groups():
    groups = {}

    def walk(name, node):
        node = node or {}
        hosts = set((node.get("hosts") or {}).keys())
        for child, sub in (node.get("children") or {}).items():
            hosts |= walk(child, sub)
        groups[name] = groups.get(name, set()) | hosts
        return hosts

    walk("all", INVENTORY["all"])
    return groups


GROUPS = inventory_groups()


def playbook_and_imports(path):
    """The playbook and every playbook it imports, recursively."""
    found = [path]
    for play in load(path) or []:
        target = play.get("ansible.builtin.import_playbook") or play.get("import_playbook")
        if target:
            found += playbook_and_imports(path.parent / target)
    return found


def jinja_names(text, conditional=False):
    source = "{{ (%s) }}" % text if conditional else text
    try:
        return meta.find_undeclared_variables(JINJA.parse(source))
    except Exception:  # a Jinja construct only Ansible's own Jinja knows: no names from it
        return set()


def names_read(node, key=None):
    """Every variable a playbook's templates and conditionals read."""
    names = set()
    if isinstance(node, dict):
        for sub_key, value in node.items():
            names |= names_read(value, sub_key)
    elif isinstance(node, list):
        for value in node:
            names |= names_read(value, key)
    elif isinstance(node, str):
        if key in CONDITIONAL_KEYS and "{{" not in node:
            names |= jinja_names(node, conditional=True)
        elif "{{" in node or "{%" in node:
            names |= jinja_names(node)
    elif isinstance(node, bool) and key in CONDITIONAL_KEYS:
        pass
    return names


def read_by(playbook_name):
    names, text = set(), ""
    for path in playbook_and_imports(PLAYBOOKS / (playbook_name + ".yml")):
        names |= names_read(load(path))
        text += "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")) + "\n"
    return names, text


def host_groups_of(playbook_name):
    """The component groups the playbook's plays act on (hosts: "backend:&{{ env ... }}")."""
    found = set()
    for path in playbook_and_imports(PLAYBOOKS / (playbook_name + ".yml")):
        for play in load(path) or []:
            pattern = play.get("hosts", "")
            if isinstance(pattern, str) and "&" in pattern:
                found |= set(pattern.split("&")[0].strip(":").split(":"))
    return found


def survey_playbook(survey_name):
    return "rollback" if survey_name == WORKFLOW_SURVEY else survey_name


# ---- one job template and one survey per playbook ---------------------------------------------


def test_every_playbook_has_a_job_template_and_a_survey():
    playbooks = sorted(path.stem for path in PLAYBOOKS.glob("*.yml"))
    templated = sorted(Path(item["playbook"]).stem for item in CONTROLLER["controller_job_templates"])
    assert templated == playbooks, "job templates and playbooks/ differ"
    assert sorted(name for name in SURVEYS if name != WORKFLOW_SURVEY) == playbooks
    for item in CONTROLLER["controller_job_templates"]:
        assert (ROOT / item["playbook"]).is_file()


@pytest.mark.parametrize("name", sorted(SURVEYS))
def test_survey_is_awx_survey_spec(name):
    survey = SURVEYS[name]
    assert set(survey) == {"name", "description", "spec"}
    assert isinstance(survey["name"], str) and survey["name"].strip()
    assert isinstance(survey["description"], str)
    assert isinstance(survey["spec"], list) and survey["spec"]
    variables = [question["variable"] for question in survey["spec"]]
    assert len(variables) == len(set(variables)), "a variable asked twice"
    for question in survey["spec"]:
        where = "%s: %s" % (name, question.get("variable"))
        assert {"question_name", "variable", "type", "required", "default"} <= set(question), where
        assert isinstance(question["question_name"], str) and question["question_name"].strip(), where
        assert isinstance(question.get("question_description", ""), str), where
        assert re.fullmatch(r"[a-z_][a-z0-9_]*", question["variable"]), where
        assert question["type"] in SURVEY_TYPES, where
        assert isinstance(question["required"], bool), where
        default = question["default"]
        if question["type"] in ("multiplechoice", "multiselect"):
            choices = question["choices"]
            choices = choices.split("\n") if isinstance(choices, str) else choices
            assert isinstance(choices, list) and choices and all(isinstance(c, str) and c for c in choices), where
            assert len(choices) == len(set(choices)), where
            picked = default.split("\n") if question["type"] == "multiselect" and default else [default]
            assert default == "" or set(picked) <= set(choices), "%s: default %r not in %r" % (where, default, choices)
        else:
            assert "choices" not in question or not question["choices"], where
            assert isinstance(question["min"], int) and isinstance(question["max"], int), where
            assert question["min"] <= question["max"], where
            if question["type"] in ("integer", "float") and default != "":
                assert question["min"] <= default <= question["max"], where
            elif default != "":
                assert question["min"] <= len(default) <= question["max"], where
        if question["required"] is False and question["type"] in ("text", "textarea", "password"):
            assert question["min"] == 0, "%s: optional, yet a minimum length" % where


@pytest.mark.parametrize("name", sorted(SURVEYS))
def test_survey_variables_are_read_by_the_playbook(name):
    names, text = read_by(survey_playbook(name))
    for question in SURVEYS[name]["spec"]:
        assert question["variable"] in names, "%s asks for %s, which playbooks/%s.yml never reads" % (
            name, question["variable"], survey_playbook(name))
        # A controller may pass an optional answer left empty as "" (older AWX does): the playbook must
        # then treat "" as not given, so an optional variable is never tested with `is defined`.
        if not question["required"]:
            variable = question["variable"]
            assert not re.search(r"\b{0} is (not )?defined(?! and {0} \| (string \| )?length > 0)".format(variable), text), (
                "%s: optional %s, but the playbook tests whether it is defined" % (name, variable))


@pytest.mark.parametrize("name", sorted(SURVEYS))
def test_environment_choices_are_inventory_groups_the_playbook_acts_on(name):
    environment = [q for q in SURVEYS[name]["spec"] if q["variable"] == "env"]
    assert len(environment) == 1 and environment[0]["required"] and environment[0]["type"] == "multiplechoice"
    choices = environment[0]["choices"]
    acted_on = set().union(*(GROUPS.get(group, set()) for group in host_groups_of(survey_playbook(name))))
    for choice in choices:
        assert choice in GROUPS, "%s offers env=%s, which is no inventory group" % (name, choice)
        assert GROUPS[choice] & acted_on, "%s offers env=%s, where the playbook has no host to act on" % (name, choice)
    # Every real environment where the playbook has hosts is offered.
    expected = [env for env in CONTROLLER_ENVIRONMENTS if GROUPS[env] & acted_on]
    assert choices == expected


def test_severity_choices_are_the_decision_matrix():
    sys.path.insert(0, str(ROOT / ".cache" / "collections"))
    from ansible_collections.sre.rollback.plugins.module_utils.policy import DEFAULT_DECISION_MATRIX

    asked = [q for s in SURVEYS.values() for q in s["spec"] if q["variable"] == "severity"]
    assert asked, "no survey asks for the severity"
    for question in asked:
        assert question["choices"] == list(DEFAULT_DECISION_MATRIX["severities"])


@pytest.mark.parametrize("name", sorted(SURVEYS))
def test_choices_are_what_the_playbook_accepts(name):
    _names, text = read_by(survey_playbook(name))
    for question in SURVEYS[name]["spec"]:
        # env and severity have their own tests above.
        if question["type"] != "multiplechoice" or question["variable"] in ("env", "severity"):
            continue
        variable = question["variable"]
        accepted = re.search(r"\b%s(?: \| default\([^)]*\))? in \[([^\]]*)\]" % variable, text)
        if accepted:
            values = {v.strip().strip("'\"") for v in accepted.group(1).split(",")}
            assert set(question["choices"]) <= values, "%s: %s offers %s, the playbook accepts %s" % (
                name, variable, question["choices"], sorted(values))
        elif variable in ("confirm", "rebuild_search"):
            assert question["choices"] == ["false", "true"] and re.search(r"\b%s \| default\(false\) \| bool" % variable, text)
        elif variable == "component":
            listed = re.search(r"rollback_components: \[([^\]]*)\]", text)
            assert listed and question["choices"] == [v.strip() for v in listed.group(1).split(",")]
        else:
            pytest.fail("%s: no way to check the choices of %s against the playbook" % (name, variable))


# ---- credential types ----------------------------------------------------------------------------


def injected_env():
    return {kind["kind"]: set(kind["injectors"].get("env", {})) for kind in CONTROLLER["controller_credential_types"]}


def test_credential_types_inject_what_the_modules_read():
    env = injected_env()
    fallbacks = {}
    for name in ("azure_auth", "k8s_client", "github"):
        source = (ROOT / "plugins" / "module_utils" / (name + ".py")).read_text()
        fallbacks[name] = set(re.findall(r'env_fallback, \["([A-Z0-9_]+)"', source))
    # The service principal the Azure modules sign in with (the endpoints are per cloud, from the inventory).
    assert fallbacks["azure_auth"] - {"AZURE_ARM_ENDPOINT", "AZURE_AUTHORITY_HOST"} <= env["azure"]
    # What azure.azcollection and AWX's own Azure credential call them, for other content in the same job.
    assert {"AZURE_SECRET", "AZURE_TENANT"} <= env["azure"]
    assert "K8S_AUTH_KUBECONFIG" in fallbacks["k8s_client"] and {"K8S_AUTH_KUBECONFIG", "KUBECONFIG"} <= env["kubernetes"]
    assert "GITHUB_TOKEN" in fallbacks["github"] and "GITHUB_TOKEN" in env["github"]
    kubernetes = [k for k in CONTROLLER["controller_credential_types"] if k["kind"] == "kubernetes"][0]
    assert kubernetes["injectors"]["env"]["K8S_AUTH_KUBECONFIG"] == "{{ tower.filename.kubeconfig }}"
    assert "template.kubeconfig" in kubernetes["injectors"]["file"]


def test_every_secret_the_real_inventory_reads_is_injected():
    injected = set().union(*injected_env().values())
    files = [ROOT / "inventories" / "group_vars" / name for name in ("all.yml", "production.yml", "staging.yml")]
    files += sorted((ROOT / "inventories" / "host_vars").glob("*-production.yml"))
    files += sorted((ROOT / "inventories" / "host_vars").glob("*-staging.yml"))
    read = set()
    for path in files:
        read |= set(re.findall(r"lookup\('ansible\.builtin\.env', '([A-Z0-9_]+)'\)", path.read_text()))
    # The EE sets the record directories; GH_TOKEN is GITHUB_TOKEN's alternative.
    provided_elsewhere = {"SRE_ROLLBACK_INCIDENT_DIR", "SRE_ROLLBACK_STATE_DIR", "GH_TOKEN"}
    assert read - provided_elsewhere <= injected, "read by the inventory, injected by no credential type: %s" % (
        sorted(read - provided_elsewhere - injected))


def test_credential_types_are_well_formed():
    for kind in CONTROLLER["controller_credential_types"]:
        fields = {field["id"]: field for field in kind["inputs"]["fields"]}
        assert set(kind["inputs"].get("required", [])) <= set(fields)
        for name, template in list(kind["injectors"].get("env", {}).items()) + list(kind["injectors"].get("file", {}).items()):
            used = jinja_names(template) - {"tower"}
            assert used <= set(fields), "%s: %s uses %s" % (kind["name"], name, used)
        for field_id, field in fields.items():
            if re.search(r"secret|password|token|key|kubeconfig|database_url", field_id):
                assert field.get("secret") is True, "%s.%s must be secret" % (kind["name"], field_id)
            if field_id not in kind["inputs"].get("required", []):
                # An optional input is injected as "" when empty, which must mean "not given" to the reader.
                assert field.get("default", None) is not None, "%s.%s: optional without default" % (kind["name"], field_id)
    kinds = {kind["kind"] for kind in CONTROLLER["controller_credential_types"]}
    for template in CONTROLLER["controller_job_templates"]:
        assert set(template["credential_kinds"]) <= kinds


# ---- the P1 workflow ----------------------------------------------------------------------------


def configure_task(name_start):
    return [task for task in CONFIGURE[0]["tasks"] if task["name"].startswith(name_start)][0]


def test_p1_workflow_plans_then_waits_for_approval_then_runs():
    workflow = configure_task("P1 workflow")["awx.awx.workflow_job_template"]
    nodes = {node["identifier"]: node for node in workflow["workflow_nodes"]}
    successors = {name: [n["identifier"] for n in node.get("related", {}).get("success_nodes", [])] for name, node in nodes.items()}
    approvals = [name for name, node in nodes.items() if node["unified_job_template"]["type"] == "workflow_approval"]
    runs = [name for name, node in nodes.items() if node.get("job_type") == "run"]
    assert len(approvals) == 1 and len(runs) == 1
    # Only the approval leads to the run, and nothing leads to the approval but a check-mode plan.
    assert [name for name, after in successors.items() if runs[0] in after] == approvals
    before_approval = [name for name, after in successors.items() if approvals[0] in after]
    assert before_approval and all(nodes[name].get("job_type") == "check" for name in before_approval)
    # No failure or always edge goes around the approval.
    for node in nodes.values():
        for edge in ("failure_nodes", "always_nodes"):
            assert not node.get("related", {}).get(edge)
    assert nodes[runs[0]]["unified_job_template"]["name"] == "{{ controller_name_prefix }}rollback"
    assert nodes[runs[0]]["extra_data"] == {"severity": "P1", "confirm": "true"}
    # Node answers must be among the node's job template survey choices (AWX validates them).
    survey = {q["variable"]: q for q in SURVEYS["rollback"]["spec"]}
    for node in nodes.values():
        for variable, value in node.get("extra_data", {}).items():
            assert value in survey[variable]["choices"], (variable, value)
        # Only what the job template prompts for can be set on a node.
        assert set(node) <= {"identifier", "unified_job_template", "related", "job_type", "extra_data"}
    assert workflow["survey_spec"] == "{{ lookup('ansible.builtin.file', 'surveys/%s.json') | from_json }}" % WORKFLOW_SURVEY
    # The job_guard role accepts a production run only from this workflow's name.
    guard = load(ROOT / "roles" / "job_guard" / "defaults" / "main.yml")
    assert CONTROLLER["controller_p1_workflow_name"] in guard["job_guard_approved_workflows"]


def test_job_templates_carry_surveys_the_ee_and_the_container_group():
    task = configure_task("One job template per playbook")
    template = task["awx.awx.job_template"]
    assert template["survey_enabled"] is True
    assert "surveys/" in template["survey_spec"]
    assert template["execution_environment"] == "{{ controller_ee_name }}"
    assert template["ask_job_type_on_launch"] is True and template["allow_simultaneous"] is False
    pod = (AWX / "templates" / "pod_spec.yml.j2").read_text()
    assert "mountPath: {{ controller_incident_mount_path }}" in pod
    assert "claimName: {{ controller_incident_volume_claim }}" in pod
    ee = (ROOT / "execution-environment.yml").read_text()
    mount = CONTROLLER["controller_incident_mount_path"]
    assert "ENV SRE_ROLLBACK_INCIDENT_DIR=%s/" % mount in ee and "ENV SRE_ROLLBACK_STATE_DIR=%s/" % mount in ee


# ---- with awx.awx ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def awx_env():
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "awx_collection.py")], capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    path = "%s:%s" % (ROOT / ".cache" / "collections", done.stdout.strip())
    return dict(os.environ, ANSIBLE_COLLECTIONS_PATH=path, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
                PATH="%s:%s" % (BIN, os.environ["PATH"]))


def test_configure_playbook_syntax_check_with_awx_collection(awx_env):
    done = subprocess.run([str(BIN / "ansible-playbook"), "--syntax-check", "awx/configure-controller.yml"],
                          cwd=ROOT, env=awx_env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    # Without awx.awx the same check fails: it really resolves the modules.
    bare = dict(awx_env, ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".cache" / "collections"))
    done = subprocess.run([str(BIN / "ansible-playbook"), "--syntax-check", "awx/configure-controller.yml"],
                          cwd=ROOT, env=bare, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode != 0 and "awx.awx" in done.stdout + done.stderr


def test_configure_playbook_refuses_without_a_repository_url(awx_env):
    # Bad input stops before the first controller call (nothing listens on the default controller host).
    done = subprocess.run([str(BIN / "ansible-playbook"), "awx/configure-controller.yml"],
                          cwd=ROOT, env=dict(awx_env, CONTROLLER_HOST="https://127.0.0.1:9"),
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 2
    assert "Give the git URL the controller clones this repository from" in done.stdout
    assert "Organization" not in done.stdout.split("The repository URL must be given")[1]


def test_ansible_lint_production_profile_on_awx(awx_env):
    done = subprocess.run([str(BIN / "ansible-lint"), "--offline", "--profile", "production", "awx/"],
                          cwd=ROOT, env=awx_env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
