"""A small, honest ARM template engine: what the deployments stand-in evaluates.

Supported: `parameters` (types string, securestring, int, bool, object,
secureObject, array; defaultValue, allowedValues, minValue/maxValue,
minLength/maxLength), `variables`, `resources` (type, name, apiVersion,
location, properties, tags, sku, kind; `condition`; `copy` is refused), and
`outputs` (type, value; `condition`). Expressions are ARM's `[...]` language
with string literals ('it''s'), integers, function calls, `.property` and
`[index]` access. Functions: parameters, variables, resourceGroup,
subscription, deployment, concat, format, uniqueString, resourceId, toLower,
toUpper, string, int, bool, if, equals, not, and, or, empty, length,
contains, union, createObject, createArray, true, false, null.

Errors are raised as TemplateError(code, message) with ARM's own codes and
wording (InvalidTemplate for what is wrong in the template or its parameters).

Deviation, on purpose: uniqueString() is deterministic and 13 characters of
[a-z0-9] like ARM's, but it is a SHA-256 digest, not ARM's MurmurHash64, so
the exact value differs from what Azure would compute.
"""

import base64
import hashlib
import json
import re

PARAMETER_TYPES = {
    "string": "String", "securestring": "SecureString", "int": "Int", "bool": "Bool",
    "object": "Object", "secureobject": "SecureObject", "array": "Array",
}
SECURE_TYPES = ("securestring", "secureobject")
PARAM_HELP = "Please see https://aka.ms/arm-create-parameter-file for usage details."
ARM_SCHEMA_HINT = "Please see https://aka.ms/arm-syntax for usage details."


class TemplateError(Exception):
    def __init__(self, code, message, details=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or []

    def as_arm_error(self):
        error = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return error


def invalid(message):
    return TemplateError("InvalidTemplate", f"Deployment template validation failed: '{message}'.")


# -- expression parsing ---------------------------------------------------------------------
_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
                    r"|(?P<punct>[(),\[\]]))")


def _tokenize(text):
    pos, tokens = 0, []
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m:
            raise invalid(f"The template language expression '{text}' is not valid: unexpected character at "
                          f"position {pos}. {ARM_SCHEMA_HINT}")
        pos = m.end()
        kind = m.lastgroup
        tokens.append((kind, m.group(kind)))
    return tokens


class _Parser:
    """Recursive descent: expr := atom ('[' expr ']')* ; atom := str | num | name '(' args ')'.

    `.prop` access is rewritten to `['prop']` before tokenizing (see _normalise_dots).
    """

    def __init__(self, text):
        self.text = text
        self.tokens = _tokenize(_normalise_dots(text))
        self.i = 0

    def fail(self, why):
        return invalid(f"The template language expression '{self.text}' is not valid: {why}. {ARM_SCHEMA_HINT}")

    def peek(self):
        return self.tokens[self.i] if self.i < len(self.tokens) else (None, None)

    def take(self, kind=None, value=None):
        tok = self.peek()
        if tok[0] is None or (kind and tok[0] != kind) or (value and tok[1] != value):
            raise self.fail(f"expected {value or kind}, found {tok[1] or 'the end'}")
        self.i += 1
        return tok

    def parse(self):
        node = self.expr()
        if self.i != len(self.tokens):
            raise self.fail(f"unexpected '{self.peek()[1]}'")
        return node

    def expr(self):
        kind, value = self.take()
        if kind == "str":
            node = ("lit", value[1:-1].replace("''", "'"))
        elif kind == "num":
            node = ("lit", int(value))
        elif kind == "name":
            self.take("punct", "(")
            args = []
            if self.peek() != ("punct", ")"):
                args.append(self.expr())
                while self.peek() == ("punct", ","):
                    self.take()
                    args.append(self.expr())
            self.take("punct", ")")
            node = ("call", value, args)
        else:
            raise self.fail(f"unexpected '{value}'")
        while self.peek() == ("punct", "["):
            self.take()
            index = self.expr()
            self.take("punct", "]")
            node = ("index", node, index)
        return node


def parse_expression(text):
    """Parse the inside of '[...]' into a node tree."""
    return _Parser(text).parse()


def _normalise_dots(text):
    """Rewrite `.name` property access into `['name']` index access outside string literals."""
    out, i, in_str = [], 0, False
    while i < len(text):
        ch = text[i]
        if ch == "'":
            in_str = not in_str
            out.append(ch)
            i += 1
            continue
        if not in_str and ch == "." and out and out[-1] in ")]":
            m = re.match(r"\.([A-Za-z_][A-Za-z0-9_]*)", text[i:])
            if m:
                out.append(f"['{m.group(1)}']")
                i += m.end()
                continue
        out.append(ch)
        i += 1
    return "".join(out)


def is_expression(value):
    return isinstance(value, str) and value.startswith("[") and value.endswith("]") and not value.startswith("[[")


def unique_string(*parts):
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode("utf-8")).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:13]


def template_hash(template):
    """A stable numeric hash of the template, the shape ARM's templateHash has."""
    canonical = json.dumps(template, sort_keys=True, separators=(",", ":"))
    return str(int(hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16], 16))


def json_type_name(value):
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, str):
        return "String"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, dict):
        return "Object"
    if value is None:
        return "Null"
    return "Float"


_EXPECTED_JSON = {"string": "String", "securestring": "String", "int": "Integer", "bool": "Boolean",
                  "object": "Object", "secureobject": "Object", "array": "Array"}


# -- evaluation ---------------------------------------------------------------------------
class Context:
    """What expressions can see: scope, deployment name, parameters, variables."""

    def __init__(self, subscription_id, tenant_id, deployment_name, resource_group=None, location=None):
        self.subscription_id = subscription_id
        self.tenant_id = tenant_id
        self.deployment_name = deployment_name
        self.resource_group = resource_group  # {"name", "location"} or None at subscription scope
        self.location = location
        self.parameters = {}
        self.variable_defs = {}
        self.variables = {}
        self._resolving = set()


class Evaluator:
    def __init__(self, ctx):
        self.ctx = ctx

    def value(self, raw):
        """Evaluate a template value: strings that are expressions, recursively in objects and arrays."""
        if isinstance(raw, dict):
            return {k: self.value(v) for k, v in raw.items()}
        if isinstance(raw, list):
            return [self.value(v) for v in raw]
        if is_expression(raw):
            return self.node(parse_expression(raw[1:-1]))
        if isinstance(raw, str) and raw.startswith("[["):
            return raw[1:]  # '[[' escapes a literal leading bracket
        return raw

    def node(self, node):
        kind = node[0]
        if kind == "lit":
            return node[1]
        if kind == "index":
            base, key = self.node(node[1]), self.node(node[2])
            return self._index(base, key)
        name, args = node[1], node[2]
        fn = getattr(self, "fn_" + name.lower(), None)
        if fn is None:
            raise invalid(f"The template function '{name}' is not valid. Please see https://aka.ms/arm-functions "
                          "for usage details")
        return fn(*[self.node(a) for a in args])

    @staticmethod
    def _index(base, key):
        if isinstance(base, dict):
            for k, v in base.items():
                if isinstance(key, str) and k.lower() == key.lower():
                    return v
            raise invalid(f"The language expression property '{key}' doesn't exist, available properties are "
                          f"'{', '.join(base)}'")
        if isinstance(base, list) and isinstance(key, int):
            if 0 <= key < len(base):
                return base[key]
            raise invalid(f"The language expression array index '{key}' is out of bounds")
        raise invalid(f"The language expression property '{key}' cannot be evaluated")

    # -- functions (ARM names, case-insensitive) --------------------------------------------
    def fn_parameters(self, name):
        for k, v in self.ctx.parameters.items():
            if k.lower() == str(name).lower():
                return v
        raise invalid(f"The template parameter '{name}' is not found. {ARM_SCHEMA_HINT}")

    def fn_variables(self, name):
        key = str(name).lower()
        if key in self.ctx.variables:
            return self.ctx.variables[key]
        for k, raw in self.ctx.variable_defs.items():
            if k.lower() == key:
                if key in self.ctx._resolving:
                    raise invalid(f"The template variable '{name}' has a circular reference")
                self.ctx._resolving.add(key)
                try:
                    self.ctx.variables[key] = self.value(raw)
                finally:
                    self.ctx._resolving.discard(key)
                return self.ctx.variables[key]
        raise invalid(f"The template variable '{name}' is not found. {ARM_SCHEMA_HINT}")

    def fn_resourcegroup(self):
        rg = self.ctx.resource_group
        if rg is None:
            raise invalid("The template function 'resourceGroup' is not expected at this location. "
                          "It is not available in a subscription-scope deployment")
        return {
            "id": f"/subscriptions/{self.ctx.subscription_id}/resourceGroups/{rg['name']}",
            "name": rg["name"], "type": "Microsoft.Resources/resourceGroups", "location": rg["location"],
            "tags": {}, "properties": {"provisioningState": "Succeeded"},
        }

    def fn_subscription(self):
        return {"id": f"/subscriptions/{self.ctx.subscription_id}", "subscriptionId": self.ctx.subscription_id,
                "tenantId": self.ctx.tenant_id, "displayName": "sandbox subscription"}

    def fn_deployment(self):
        return {"name": self.ctx.deployment_name, "location": self.ctx.location}

    @staticmethod
    def fn_concat(*args):
        if args and all(isinstance(a, list) for a in args):
            return [x for a in args for x in a]
        return "".join(_as_string(a) for a in args)

    @staticmethod
    def fn_format(fmt, *args):
        def sub(m):
            index = int(m.group(1))
            if index >= len(args):
                raise invalid(f"The format string '{fmt}' refers to argument {index}, but only {len(args)} were given")
            return _as_string(args[index])
        return re.sub(r"\{(\d+)\}", sub, str(fmt))

    @staticmethod
    def fn_uniquestring(*parts):
        if not parts:
            raise invalid("The template function 'uniqueString' expects at least one argument")
        return unique_string(*parts)

    def fn_resourceid(self, *args):
        args = [str(a) for a in args]
        type_index = next((i for i, a in enumerate(args) if "/" in a and "." in a.split("/")[0]), None)
        if type_index is None:
            raise invalid("The template function 'resourceId' expects a resource type like 'Namespace/type'")
        prefix, rtype, names = args[:type_index], args[type_index], args[type_index + 1:]
        sub = self.ctx.subscription_id
        rg = self.ctx.resource_group["name"] if self.ctx.resource_group else None
        if len(prefix) == 2:
            sub, rg = prefix
        elif len(prefix) == 1:
            rg = prefix[0]
        return resource_id(sub, rg, rtype, "/".join(names))

    @staticmethod
    def fn_tolower(s):
        return str(s).lower()

    @staticmethod
    def fn_toupper(s):
        return str(s).upper()

    @staticmethod
    def fn_string(v):
        return _as_string(v)

    @staticmethod
    def fn_int(v):
        try:
            return int(v)
        except (TypeError, ValueError) as err:
            raise invalid(f"The template function 'int' cannot convert '{v}' to an integer") from err

    @staticmethod
    def fn_bool(v):
        if isinstance(v, str):
            return v.lower() == "true"
        return bool(v)

    @staticmethod
    def fn_if(cond, a, b):
        return a if cond else b

    @staticmethod
    def fn_equals(a, b):
        return a == b

    @staticmethod
    def fn_not(a):
        return not a

    @staticmethod
    def fn_and(*a):
        return all(a)

    @staticmethod
    def fn_or(*a):
        return any(a)

    @staticmethod
    def fn_empty(v):
        return v is None or len(v) == 0

    @staticmethod
    def fn_length(v):
        return len(v)

    @staticmethod
    def fn_contains(container, item):
        if isinstance(container, dict):
            return any(k.lower() == str(item).lower() for k in container)
        if isinstance(container, str):
            return str(item).lower() in container.lower()
        return item in container

    @staticmethod
    def fn_union(*objs):
        if all(isinstance(o, dict) for o in objs):
            merged = {}
            for o in objs:
                merged.update(o)
            return merged
        out = []
        for o in objs:
            out.extend(x for x in o if x not in out)
        return out

    @staticmethod
    def fn_createobject(*kv):
        if len(kv) % 2:
            raise invalid("The template function 'createObject' expects an even number of arguments")
        return {str(kv[i]): kv[i + 1] for i in range(0, len(kv), 2)}

    @staticmethod
    def fn_createarray(*items):
        return list(items)

    @staticmethod
    def fn_true():
        return True

    @staticmethod
    def fn_false():
        return False

    @staticmethod
    def fn_null():
        return None


def _as_string(value):
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return "" if value is None else str(value)


def resource_id(subscription_id, resource_group, rtype, name):
    """ARM resource id: nested types interleave with the name segments (ns/a/b + n1/n2 -> ns/a/n1/b/n2)."""
    namespace, *types = rtype.split("/")
    names = name.split("/")
    if len(types) != len(names):
        raise invalid(f"The resource type '{rtype}' and name '{name}' do not have the same number of segments")
    path = "/".join(f"{t}/{n}" for t, n in zip(types, names))
    scope = f"/subscriptions/{subscription_id}"
    if resource_group:
        scope += f"/resourceGroups/{resource_group}"
    return f"{scope}/providers/{namespace}/{path}"


# -- whole template ------------------------------------------------------------------------
def check_shape(template):
    if not isinstance(template, dict):
        raise invalid("The template must be a JSON object")
    for key in ("$schema", "contentVersion", "resources"):
        if key not in template:
            raise invalid(f"Required property '{key}' not found in JSON. Path '', line 1, position 1")
    if not isinstance(template["resources"], (list, dict)):
        raise invalid("The template property 'resources' must be an array")


def bind_parameters(template, supplied, ctx):
    """Check the supplied parameter values against the declarations; fill defaults. -> {name: value}."""
    declared = template.get("parameters") or {}
    supplied = dict(supplied or {})
    lower_declared = {k.lower(): k for k in declared}
    for name in supplied:
        if name.lower() not in lower_declared:
            raise invalid(f"The template parameters '{name}' in the parameters file are not valid; they are not "
                          f"present in the original template and can therefore not be provided at deployment time. "
                          f"The only supported parameters for this template are '{', '.join(declared)}'. {PARAM_HELP}")
    supplied = {lower_declared[k.lower()]: v for k, v in supplied.items()}
    values = {}
    ev = Evaluator(ctx)
    ctx.parameters = values  # defaults may refer to earlier parameters
    for name, decl in declared.items():
        ptype = str((decl or {}).get("type", "")).lower()
        if ptype not in PARAMETER_TYPES:
            raise invalid(f"The template parameter '{name}' has an invalid type '{decl.get('type')}'. The supported "
                          f"types are '{', '.join(PARAMETER_TYPES.values())}'. {ARM_SCHEMA_HINT}")
        if name in supplied:
            entry = supplied[name]
            if not isinstance(entry, dict) or ("value" not in entry and "reference" not in entry):
                raise invalid(f"The template parameter '{name}' must be an object with a 'value' property. {PARAM_HELP}")
            if "reference" in entry:
                raise TemplateError("InvalidTemplate", "Key Vault parameter references are not modelled by the sandbox")
            value = entry["value"]
        elif "defaultValue" in decl:
            value = ev.value(decl["defaultValue"])
        else:
            raise invalid(f"The value for the template parameter '{name}' at line '1' and column '1' is not "
                          f"provided. {PARAM_HELP}")
        expected = _EXPECTED_JSON[ptype]
        actual = json_type_name(value)
        if actual != expected:
            raise invalid(f"Template parameter JToken type is not valid. Expected '{expected}'. Actual '{actual}'. "
                          f"{PARAM_HELP}")
        allowed = decl.get("allowedValues")
        if allowed is not None and value not in allowed:
            raise invalid(f"The provided value '{value}' for the template parameter '{name}' is not valid. The "
                          f"parameter value is not part of the allowed value(s): '{','.join(map(str, allowed))}'")
        if ptype == "int":
            if "minValue" in decl and value < decl["minValue"]:
                raise invalid(f"The provided value for the template parameter '{name}' is not valid. The value is "
                              f"less than the minimum value '{decl['minValue']}'")
            if "maxValue" in decl and value > decl["maxValue"]:
                raise invalid(f"The provided value for the template parameter '{name}' is not valid. The value is "
                              f"greater than the maximum value '{decl['maxValue']}'")
        if ptype in ("string", "securestring", "array"):
            if "minLength" in decl and len(value) < decl["minLength"]:
                raise invalid(f"The provided value for the template parameter '{name}' is not valid. Length of the "
                              f"value should be greater than or equal to '{decl['minLength']}'")
            if "maxLength" in decl and len(value) > decl["maxLength"]:
                raise invalid(f"The provided value for the template parameter '{name}' is not valid. Length of the "
                              f"value should be less than or equal to '{decl['maxLength']}'")
        values[name] = value
    return values


def secure_parameter_names(template):
    return {name.lower() for name, decl in (template.get("parameters") or {}).items()
            if str((decl or {}).get("type", "")).lower() in SECURE_TYPES}


class Evaluated:
    """The outcome of evaluating a template for one deployment."""

    def __init__(self, parameters, resources, outputs_fn):
        self.parameters = parameters      # {name: value}, secure ones included (never echo)
        self.resources = resources        # [{id, type, name, apiVersion, location, properties, tags, sku, kind}]
        self._outputs_fn = outputs_fn

    def outputs(self):
        return self._outputs_fn()


def evaluate(template, supplied_parameters, ctx):
    """Validate and evaluate the template; raises TemplateError the way ARM reports it."""
    check_shape(template)
    params = bind_parameters(template, supplied_parameters, ctx)
    ctx.parameters = params
    ctx.variable_defs = template.get("variables") or {}
    ctx.variables = {}
    ev = Evaluator(ctx)
    for name in ctx.variable_defs:
        ev.fn_variables(name)
    raw_resources = template["resources"]
    if isinstance(raw_resources, dict):  # languageVersion 2.0 symbolic names
        raw_resources = list(raw_resources.values())
    resources = []
    for index, raw in enumerate(raw_resources):
        if not isinstance(raw, dict):
            raise invalid(f"The template resource at index '{index}' is not an object")
        for key in ("type", "name", "apiVersion"):
            if key not in raw:
                raise invalid(f"The template resource at index '{index}' is missing the required property '{key}'. "
                              f"{ARM_SCHEMA_HINT}")
        if "copy" in raw:
            raise invalid("The sandbox does not model resource 'copy' loops")
        if "condition" in raw and not ev.value(raw["condition"]):
            continue
        rtype, name = ev.value(raw["type"]), ev.value(raw["name"])
        rg = ctx.resource_group["name"] if ctx.resource_group else None
        res = {
            "id": resource_id(ctx.subscription_id, rg, rtype, name),
            "type": rtype,
            "name": name,
            "apiVersion": ev.value(raw["apiVersion"]),
        }
        for key in ("location", "properties", "tags", "sku", "kind"):
            if key in raw:
                res[key] = ev.value(raw[key])
        resources.append(res)

    def outputs():
        out = {}
        for name, decl in (template.get("outputs") or {}).items():
            if "condition" in decl and not ev.value(decl["condition"]):
                continue
            out[name] = {"type": PARAMETER_TYPES.get(str(decl.get("type", "")).lower(), decl.get("type")),
                         "value": ev.value(decl.get("value"))}
        return out

    # Outputs are evaluated now too, so an invalid output expression fails validation, as in ARM.
    outputs()
    return Evaluated(params, resources, outputs)
