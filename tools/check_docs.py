# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every plugin's ansible-doc is complete and its EXAMPLES read like a runbook.

    .venv/bin/python tools/check_docs.py

Reads what ansible-doc renders (documentation fragments merged), for every module, the callback
and filter plugins, and checks:

* short_description, description, author ("Name (@handle)"), version_added; every option and
  every RETURN value has a description (RETURN values also returned and type);
* EXAMPLES exist and parse as YAML into a list of tasks; every task (blocks included) has a name,
  as a runbook step has; the module appears under its FQCN;
* in EXAMPLES, every task of this collection uses only options the module has (a renamed or
  removed option leaves no stale example behind) and never a short module name;
* no literal secret: a no_log option (read from the module's own argument spec) is given from a
  variable or lookup ("{{ ... }}"), never as a value someone could paste into production;
* no ansible-test sanity ignore file hides a problem (tests/sanity/ignore-*.txt with entries).

Exits non-zero listing every problem found.
"""

import glob
import json
import os
import re
import runpy
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTION = "sre.rollback"
AUTHOR = re.compile(r"^[^()]+ \(@[\w-]+\)$")
SECRETS = {}  # module FQCN -> names of its no_log options
# Keys of a task that are not module options.
TASK_KEYWORDS = {
    "name", "register", "when", "loop", "loop_control", "with_items", "vars", "check_mode", "diff",
    "changed_when", "failed_when", "ignore_errors", "no_log", "tags", "until", "retries", "delay",
    "delegate_to", "run_once", "environment", "notify", "become", "module_defaults", "throttle",
    "async", "poll", "any_errors_fatal", "timeout", "listen", "args",
}


def ansible_doc(plugin_type, names):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".cache", "collections"),
               ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    done = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-doc"), "--json", "-t", plugin_type] + names,
        capture_output=True, text=True, check=False, env=env, cwd=ROOT)
    if done.returncode != 0:
        sys.exit("ansible-doc failed: %s" % done.stderr.strip())
    return json.loads(done.stdout)


class _SpecCaptured(Exception):
    pass


def no_log_options(fqcn):
    """The names of the module's no_log options (at any depth), from the argument spec it builds."""
    from ansible.module_utils import basic  # pylint: disable=import-outside-toplevel

    def capture(self, argument_spec=None, **kwargs):
        raise _SpecCaptured(argument_spec)

    def walk(spec):
        for name, option in (spec or {}).items():
            if option.get("no_log"):
                yield name
            yield from walk(option.get("options"))

    original = basic.AnsibleModule.__init__
    basic.AnsibleModule.__init__ = capture
    try:
        namespace = runpy.run_path(os.path.join(ROOT, "plugins", "modules", fqcn.split(".")[-1] + ".py"))
        namespace["main"]()
    except _SpecCaptured as captured:
        return set(walk(captured.args[0]))
    finally:
        basic.AnsibleModule.__init__ = original
    return set()


def secrets_given_literally(args, secret_names, found):
    """Option paths whose value is a literal string although the option is no_log."""
    if isinstance(args, list):
        for item in args:
            secrets_given_literally(item, secret_names, found)
    elif isinstance(args, dict):
        for key, value in args.items():
            if key in secret_names and isinstance(value, str) and value and "{{" not in value:
                found.append(key)
            else:
                secrets_given_literally(value, secret_names, found)
    return found


def plugin_names(directory):
    return sorted("%s.%s" % (COLLECTION, os.path.basename(path)[:-3])
                  for path in glob.glob(os.path.join(ROOT, "plugins", directory, "*.py"))
                  if not path.endswith("__init__.py"))


def walk_return(prefix, values, problems):
    for key, value in (values or {}).items():
        where = "%s.%s" % (prefix, key) if prefix else key
        # As validate-modules: `returned` is required of the top-level values, not of what they contain.
        for field in ("description", "type") + (() if prefix else ("returned",)):
            if not value.get(field):
                problems.append("RETURN %s has no %s" % (where, field))
        walk_return(where, value.get("contains"), problems)


def tasks_of(examples):
    """The tasks of EXAMPLES, blocks flattened."""
    for task in examples:
        if isinstance(task, dict) and "block" in task:
            yield from tasks_of(task["block"] + task.get("rescue", []) + task.get("always", []))
        else:
            yield task


def option_names(doc):
    names = set()
    for name, spec in (doc.get("options") or {}).items():
        names.add(name)
        names.update(spec.get("aliases") or [])
    return names


def check_examples(fqcn, text, modules, problems, is_module):
    if not (text or "").strip():
        problems.append("no EXAMPLES")
        return
    try:
        examples = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        problems.append("EXAMPLES are not YAML: %s" % str(exc).replace("\n", " "))
        return
    if not isinstance(examples, list) or not all(isinstance(task, dict) for task in examples):
        problems.append("EXAMPLES are not a list of tasks")
        return
    tasks = list(tasks_of(examples))
    short_names = {name.split(".")[-1] for name in modules}
    uses_self = False
    for number, task in enumerate(tasks, 1):
        label = "EXAMPLES task %d (%s)" % (number, task.get("name", "unnamed"))
        if not task.get("name"):
            problems.append("%s has no name" % label)
        for key, args in task.items():
            if key in short_names and key not in TASK_KEYWORDS:
                problems.append("%s uses the short name %s; write %s.%s" % (label, key, COLLECTION, key))
            if key not in modules:
                continue
            uses_self = uses_self or key == fqcn
            if not isinstance(args, dict):
                continue
            unknown = sorted(set(args) - option_names(modules[key]))
            if unknown:
                problems.append("%s gives %s options it does not have: %s" % (label, key, ", ".join(unknown)))
            if key not in SECRETS:
                SECRETS[key] = no_log_options(key)
            for option in secrets_given_literally(args, SECRETS[key], []):
                problems.append("%s gives the no_log option %s literally; take it from a vault or lookup" % (label, option))
    if is_module and not uses_self:
        problems.append("EXAMPLES never call %s" % fqcn)


def check_plugin(fqcn, data, modules, is_module):
    problems = []
    doc = data.get("doc") or {}
    for field in ("short_description", "description", "version_added"):
        if not doc.get(field):
            problems.append("no %s" % field)
    authors = doc.get("author") or []
    authors = [authors] if isinstance(authors, str) else authors
    if not authors:
        problems.append("no author")
    problems += ["author %r is not 'Name (@handle)'" % author for author in authors if not AUTHOR.match(author)]
    for name, spec in (doc.get("options") or {}).items():
        if not spec.get("description"):
            problems.append("option %s has no description" % name)
    if is_module:
        if not data.get("return"):
            problems.append("no RETURN")
        walk_return("", data.get("return"), problems)
    if is_module or doc.get("plugin_type") == "filter" or data.get("examples"):
        check_examples(fqcn, data.get("examples"), modules, problems, is_module)
    return problems


def sanity_ignores():
    problems = []
    for path in glob.glob(os.path.join(ROOT, "tests", "sanity", "ignore-*.txt")):
        with open(path) as handle:
            entries = [line for line in handle if line.strip() and not line.lstrip().startswith("#")]
        if entries:
            problems.append("%s ignores %d sanity problem(s): %s" % (
                os.path.relpath(path, ROOT), len(entries), "; ".join(line.strip() for line in entries[:5])))
    return problems


def main():
    # The modules import the collection as ansible_collections.sre.rollback (the argument specs).
    sys.path.insert(0, os.path.join(ROOT, ".cache", "collections"))
    module_docs = ansible_doc("module", plugin_names("modules"))
    modules = {name: data["doc"] for name, data in module_docs.items()}
    found = {}
    for plugin_type, directory in (("module", "modules"), ("callback", "callback"), ("filter", "filter")):
        names = plugin_names(directory)
        docs = module_docs if plugin_type == "module" else ansible_doc(plugin_type, names)
        for name in names:
            if name not in docs:
                found[name] = ["ansible-doc cannot read it"]
                continue
            problems = check_plugin(name, docs[name], modules, plugin_type == "module")
            if plugin_type == "filter" and not (docs[name].get("examples") or "").strip():
                problems.append("no EXAMPLES")
            if problems:
                found[name] = problems
    ignores = sanity_ignores()
    for name, problems in sorted(found.items()):
        for problem in problems:
            print("%s: %s" % (name, problem))
    for problem in ignores:
        print(problem)
    count = sum(len(problems) for problems in found.values()) + len(ignores)
    print("%d problem(s) in the docs of %d modules and %d other plugins" % (
        count, len(modules), len(plugin_names("callback")) + len(plugin_names("filter"))))
    return 1 if count else 0


if __name__ == "__main__":
    sys.exit(main())
