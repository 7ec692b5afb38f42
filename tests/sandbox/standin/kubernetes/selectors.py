"""Label and field selectors as the API server parses them (k8s.io/apimachinery/pkg/labels, fields).

Label selectors: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, comma-separated (AND).
Field selectors: `path=value`, `path==value`, `path!=value`, comma-separated; which paths a kind
supports is the caller's business (the real server answers 400 for others).
"""

import re


class SelectorError(ValueError):
    pass


_SET_RE = re.compile(r"^\s*(!?)([A-Za-z0-9_./-]+)\s*(?:(in|notin)\s*\(([^)]*)\)|(==|=|!=)\s*([A-Za-z0-9_.-]*))?\s*$")


def _split_terms(text):
    """Split on commas that are not inside parentheses."""
    terms, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(char)
    terms.append("".join(current))
    return [t for t in (t.strip() for t in terms) if t]


def parse_label_selector(text):
    """A list of (key, op, values); op in =, !=, in, notin, exists, !exists."""
    requirements = []
    for term in _split_terms(text or ""):
        m = _SET_RE.match(term)
        if not m:
            raise SelectorError(f"unable to parse requirement: {term!r}")
        negate, key, set_op, set_values, op, value = m.groups()
        if negate:
            if set_op or op:
                raise SelectorError(f"unable to parse requirement: {term!r}")
            requirements.append((key, "!exists", ()))
        elif set_op:
            values = tuple(v.strip() for v in set_values.split(",") if v.strip())
            requirements.append((key, set_op, values))
        elif op:
            requirements.append((key, "!=" if op == "!=" else "=", (value,)))
        else:
            requirements.append((key, "exists", ()))
    return requirements


def labels_match(requirements, labels):
    labels = labels or {}
    for key, op, values in requirements:
        present = key in labels
        value = labels.get(key)
        if op == "=" and value != values[0]:
            return False
        if op == "!=" and present and value == values[0]:
            return False
        if op == "in" and (not present or value not in values):
            return False
        if op == "notin" and present and value in values:
            return False
        if op == "exists" and not present:
            return False
        if op == "!exists" and present:
            return False
    return True


def selector_from_label_selector(spec_selector):
    """A metav1.LabelSelector (matchLabels + matchExpressions) as requirements."""
    requirements = []
    for key, value in sorted(((spec_selector or {}).get("matchLabels") or {}).items()):
        requirements.append((key, "=", (value,)))
    for expr in (spec_selector or {}).get("matchExpressions") or []:
        op = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!exists"}.get(expr.get("operator"))
        if op is None:
            raise SelectorError(f"{expr.get('operator')!r} is not a valid label selector operator")
        requirements.append((expr["key"], op, tuple(expr.get("values") or ())))
    return requirements


def format_label_selector(spec_selector):
    """The string form (what Scale.status.selector carries)."""
    parts = []
    for key, op, values in selector_from_label_selector(spec_selector):
        if op == "=":
            parts.append(f"{key}={values[0]}")
        elif op in ("in", "notin"):
            parts.append(f"{key} {op} ({','.join(sorted(values))})")
        elif op == "exists":
            parts.append(key)
        else:
            parts.append(f"!{key}")
    return ",".join(parts)


def parse_field_selector(text):
    """A list of (path, op, value), op in = and !=."""
    requirements = []
    for term in _split_terms(text or ""):
        m = re.match(r"^([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*)$", term)
        if not m:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
        path, op, value = m.groups()
        requirements.append((path, "!=" if op == "!=" else "=", value))
    return requirements


def field_value(obj, path):
    value = obj
    for part in path.split("."):
        if not isinstance(value, dict):
            return ""
        value = value.get(part)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def fields_match(requirements, obj):
    for path, op, value in requirements:
        actual = field_value(obj, path)
        if (op == "=") != (actual == value):
            return False
    return True
