#!/usr/bin/env python3
"""The layering check: every file may include nibble headers only from the rooms its room may use.

Run by ctest (test `layering`) as `layering_test.py ROOT`; prints each offending include with its file and
line and exits 1, so that an arrow pointing up fails CI. The table is DEVELOPERS.md's "Layout" table; change
both together. Unit tests (`*_test.cc`) may also use tests/support and the engine rooms that build their
fixtures (backends, tools), since a test links what it needs.

It also refuses include cycles between modules (a module is foo.h with its foo.cc/foo.cu): kv_cache.cc
including backend.h, which includes kv_cache.h, is an arrow running back up inside a room.
"""
import pathlib
import re
import sys

ENGINE_ROOMS = ["base", "io", "tokenizer", "runtime", "cpu", "cuda", "backends", "serving", "tools"]

# room -> rooms it may include (itself always allowed)
ALLOWED = {
    "engine/base": [],
    "engine/io": ["engine/base"],
    "engine/tokenizer": ["engine/base"],
    "engine/runtime": ["engine/base", "engine/io"],
    "engine/cpu": ["engine/base", "engine/io", "engine/runtime"],
    "engine/cuda": ["engine/base", "engine/io", "engine/runtime"],
    "engine/backends": ["engine/base", "engine/io", "engine/runtime", "engine/cpu", "engine/cuda"],
    "engine/serving": ["engine/base", "engine/io", "engine/tokenizer", "engine/runtime"],
    "engine/tools": ["engine/base", "engine/io", "engine/tokenizer", "engine/runtime"],
    "quantizer": [f"engine/{room}" for room in ENGINE_ROOMS],
    "proto": [],
    "service/common": ["engine/base", "proto"],
    "service/client": ["proto", "engine/base"],
    "service/inference_server": [f"engine/{room}" for room in ENGINE_ROOMS] + ["proto", "service/common"],
    "service/quantizer_server": [f"engine/{room}" for room in ENGINE_ROOMS]
    + ["quantizer", "proto", "service/common"],
    "service/cli": [f"engine/{room}" for room in ENGINE_ROOMS]
    + ["quantizer", "proto", "service/common", "service/client"],
    "bench": [f"engine/{room}" for room in ENGINE_ROOMS] + ["quantizer", "proto", "service/client"],
    "deploy": [],
    "tests": None,  # everything
}
TEST_EXTRA = ["tests", "engine/backends", "engine/cpu", "engine/tools"]

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def room_of(path: str):
    """The longest room prefix of a repository path (or an include path)."""
    best = None
    for room in ALLOWED:
        if path == room or path.startswith(room + "/"):
            if best is None or len(room) > len(best):
                best = room
    if path.startswith(("nibble/v1/", "grpc/reflection/")):  # generated from proto/
        return "proto"
    return best


def module_cycles(root: pathlib.Path):
    """Include cycles between modules (foo.h + foo.cc + foo.cu; tests excluded), one line per cycle."""
    edges = {}
    for path in root.rglob("*"):
        if path.suffix not in {".h", ".cc", ".cu", ".cuh"} or path.name.endswith("_test.cc"):
            continue
        relative = path.relative_to(root).as_posix()
        if relative.startswith(("build", ".")):
            continue
        module = relative.rsplit(".", 1)[0]
        for line in path.read_text(errors="replace").splitlines():
            match = INCLUDE.match(line)
            if match and (root / match.group(1)).exists():
                target = match.group(1).rsplit(".", 1)[0]
                if target != module:
                    edges.setdefault(module, set()).add(target)
    cycles, state = [], {}

    def visit(module, stack):
        state[module] = "open"
        stack.append(module)
        for target in sorted(edges.get(module, ())):
            if state.get(target) == "open":
                cycles.append("include cycle: " + " -> ".join(stack[stack.index(target):] + [target]))
            elif target not in state:
                visit(target, stack)
        stack.pop()
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [])
    return cycles


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    problems = []
    checked = 0
    for path in sorted(root.rglob("*")):
        if path.suffix not in {".h", ".cc", ".cu", ".cuh"} or not path.is_file():
            continue
        relative = path.relative_to(root).as_posix()
        if relative.startswith(("build", ".")):
            continue
        room = room_of(relative)
        if room is None or ALLOWED[room] is None:
            continue  # not nibble's code, or test code (which may use everything)
        allowed = set(ALLOWED[room]) | {room}
        if path.name.endswith("_test.cc"):
            allowed |= set(TEST_EXTRA)
        checked += 1
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            match = INCLUDE.match(line)
            if not match:
                continue
            target = room_of(match.group(1))
            if target is None or target in allowed:
                continue  # a third-party header, or a room this one may use
            problems.append(f"{relative}:{number}: {room} may not include {match.group(1)} ({target})")
    problems += module_cycles(root)
    for problem in problems:
        print(problem)
    print(f"layering: {checked} files checked, {len(problems)} includes against the layering")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
