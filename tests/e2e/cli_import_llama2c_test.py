#!/usr/bin/env python3
"""`nibble import-llama2c` as users run it, with llama2.c's own tokenizer.bin: stories260K imported with tok512.bin
and with tok512.model, then `nibble generate` (greedy, CPU) on each must write the same text, which starts with
the whole greedy text run.c prints in ../shared/models/stories260K/stories260K.md, and `nibble tokenize --model` on each must give the same ids for every
line of the dev text; a malformed tokenizer.bin fails naming the file and the token. Exits 77 (skipped) where
../shared's stories260K is absent.

    cli_import_llama2c_test.py NIBBLE_BIN SOURCE_DIR     (NIBBLE_SHARED, where set, names the shared folder)
"""
import os
import pathlib
import struct
import subprocess
import sys
import tempfile



def golden_text(stories):
    """What stories260K.md shows run.c printing at temperature 0 (run.c's tokenizer is tok512.bin)."""
    command = "$ ./run stories260K/stories260K.bin -z stories260K/tok512.bin -t 0.0\n"
    text = (stories / "stories260K.md").read_text()
    return text[text.index(command) + len(command):].split("```")[0].strip()


def run(args, text=""):
    return subprocess.run(args, input=text.encode(), capture_output=True, timeout=300)


def main():
    nibble, source = sys.argv[1], pathlib.Path(sys.argv[2])
    shared = pathlib.Path(os.environ.get("NIBBLE_SHARED", source.parent / "shared"))
    stories = shared / "models" / "stories260K"
    dev_text = shared / "data" / "tinystories-dev-50.txt"
    if not all(path.exists() for path in [stories / "stories260K.bin", stories / "stories260K.md",
                                          stories / "tok512.bin", stories / "tok512.model", dev_text]):
        print("skipped: stories260K with tok512.bin and tok512.model, or the dev text, not found in", shared)
        return 77
    failures = []
    with tempfile.TemporaryDirectory() as temp:
        temp = pathlib.Path(temp)
        outputs, ids = {}, {}
        lines = [line for line in dev_text.read_text().splitlines() if line]
        for tokenizer in ["tok512.bin", "tok512.model"]:
            out = temp / tokenizer
            imported = run([nibble, "import-llama2c", str(stories / "stories260K.bin"), str(stories / tokenizer),
                            str(out)])
            if imported.returncode != 0:
                sys.exit(f"import-llama2c with {tokenizer} exited {imported.returncode}: {imported.stderr.decode()}")
            generated = run([nibble, "generate", "--model", str(out), "--prompt", "Once upon a time", "--temperature",
                             "0", "--backend", "cpu"])
            if generated.returncode != 0:
                sys.exit(f"generate on the {tokenizer} import exited {generated.returncode}: "
                         f"{generated.stderr.decode()}")
            outputs[tokenizer] = generated.stdout.decode()
            tokenized = run([nibble, "tokenize", "--model", str(out)], "".join(line + "\n" for line in lines))
            ids[tokenizer] = tokenized.stdout.decode().splitlines()
        # run.c's 256 steps include the BOS position; generate's default 256 tokens follow the prompt's 5.
        golden = golden_text(stories)
        if len(golden) < 500 or not outputs["tok512.bin"].startswith(golden):
            failures.append(f"generate on the tok512.bin import: {outputs['tok512.bin'][:200]!r}, not {golden[:200]!r}")
        if outputs["tok512.bin"] != outputs["tok512.model"]:
            failures.append("generate writes other text on the tok512.bin import than on the tok512.model import")
        if len(ids["tok512.bin"]) != len(lines) or ids["tok512.bin"] != ids["tok512.model"]:
            failures.append("tokenize --model gives other ids on the tok512.bin import than on the tok512.model one")

        # Token 5's length set to -1: refused naming the file and the token; nothing written.
        bad = bytearray((stories / "tok512.bin").read_bytes())
        offset = 4
        for _ in range(5):
            offset += 8 + struct.unpack_from("<i", bad, offset + 4)[0]
        struct.pack_into("<i", bad, offset + 4, -1)
        bad_path = temp / "tokenizer.bin"
        bad_path.write_bytes(bytes(bad))
        refused = run([nibble, "import-llama2c", str(stories / "stories260K.bin"), str(bad_path), str(temp / "bad")])
        message = refused.stderr.decode()
        if refused.returncode == 0 or f"{bad_path}: token 5 (at byte {offset}) has length -1" not in message:
            failures.append(f"a malformed tokenizer.bin: exit {refused.returncode}, {message!r}")
        if (temp / "bad").exists():
            failures.append("a refused import wrote its output directory")
    for failure in failures:
        print(failure)
    print("cli_import_llama2c_test:", "FAILED" if failures else "passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
