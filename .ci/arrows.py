#!/usr/bin/env python3
"""The arrows of ARCHITECTURE.md section 3: which top-level modules of src/ each one imports
(`crate::name`), leaving out `#[cfg(test)]` items, `tests/` folders and comments. Prints one
line per module and exits 1 when two top-level modules import each other, directly or not."""
import collections
import os
import re
import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else "src"


def strip_test_items(text):
    """Drops each `#[cfg(test)]` item: up to its `;`, or its `{ ... }` block."""
    out, i = [], 0
    while True:
        j = text.find("#[cfg(test)]", i)
        if j < 0:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i:j])
        brace, semi = text.find("{", j), text.find(";", j)
        if brace < 0 or 0 <= semi < brace:
            i = semi + 1
            continue
        depth, p = 0, brace
        while p < len(text):
            depth += {"{": 1, "}": -1}.get(text[p], 0)
            if depth == 0:
                break
            p += 1
        i = p + 1


edges = collections.defaultdict(set)
for folder, _, files in os.walk(ROOT):
    for name in files:
        rel = os.path.relpath(os.path.join(folder, name), ROOT)
        parts = rel.split(os.sep)
        if not name.endswith(".rs") or rel in ("lib.rs", "main.rs") or parts[0] == "cli":
            continue
        if "tests" in parts[:-1] or name == "tests.rs":
            continue
        top = parts[0].removesuffix(".rs")
        text = strip_test_items(open(os.path.join(folder, name)).read())
        text = "\n".join(l for l in text.splitlines() if not l.strip().startswith("//"))
        names = set(re.findall(r"crate::(\w+)", text))
        for group in re.findall(r"crate::\{([^}]*)\}", text):
            names.update(re.findall(r"(?:^|,)\s*(\w+)", group))
        edges[top].update(n for n in names if n != top)

for module in sorted((m for m in edges if edges[m]), key=lambda m: (-len(edges[m]), m)):
    print(f"{module:<13} -> {' '.join(sorted(edges[module]))}")


def reaches(start, goal):
    seen, todo = set(), [start]
    while todo:
        for n in edges.get(todo.pop(), ()):
            if n == goal:
                return True
            if n not in seen:
                seen.add(n)
                todo.append(n)
    return False


cycles = sorted({tuple(sorted((a, b))) for a in edges for b in edges[a] if reaches(b, a)})
if cycles:
    print("cycles through:", ", ".join(f"{a} <-> {b}" for a, b in cycles))
    sys.exit(1)
