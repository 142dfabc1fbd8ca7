#!/usr/bin/env python3
"""`nibble tokenize` as users run it: text lines on stdin -> one JSON array of ids per line, and --decode
back, against the reference ids @lenml/tokenizers computed (scripts/fetch-test-data.sh) for the real
tokenizer.json files, through both --tokenizer FILE and --model DIR. Exits 77 (skipped) only where the
fetch found the npm registry unreachable (or ../shared absent).

    cli_tokenize_test.py NIBBLE_BIN TEST_DATA_DIR     (NIBBLE_TEST_DATA, where set, overrides TEST_DATA_DIR)
"""
import json
import os
import pathlib
import subprocess
import sys


def run(args, text):
    result = subprocess.run(args, input=text.encode(), capture_output=True, timeout=300)
    if result.returncode != 0:
        sys.exit(f"{' '.join(args)} exited {result.returncode}: {result.stderr.decode(errors='replace')}")
    return result.stdout.decode()


def main():
    nibble, data = sys.argv[1], pathlib.Path(os.environ.get("NIBBLE_TEST_DATA", sys.argv[2]))
    if (data / "SKIP").exists():
        print("skipped: scripts/fetch-test-data.sh found no test data:", (data / "SKIP").read_text().strip())
        return 77
    failures = 0
    for name in ["llama3", "llama2"]:
        lines = [json.loads(line) for line in (data / "reference" / f"{name}.jsonl").read_text().splitlines()]
        # One text per stdin line: only texts without line breaks, and not empty (an empty line is [] anyway).
        single = [line for line in lines if line["text"] and "\n" not in line["text"] and "\r" not in line["text"]]
        assert len(single) > 1000, f"{name}: only {len(single)} single-line texts"
        text = "".join(line["text"] + "\n" for line in single)
        tokenizer_dir = data / "tokenizers" / name
        for source in (["--tokenizer", str(tokenizer_dir / "tokenizer.json")], ["--model", str(tokenizer_dir)]):
            ids = [json.loads(out) for out in run([nibble, "tokenize", *source], text).splitlines()]
            if ids != [line["ids"] for line in single]:
                wrong = next(i for i, (got, line) in enumerate(zip(ids, single)) if got != line["ids"])
                print(f"{name} {source[0]}: ids differ from the reference at line {wrong}: {single[wrong]['text'][:60]!r}")
                failures += 1
        ids_text = "".join(json.dumps(line["ids"]) + "\n" for line in single)
        decoded = run([nibble, "tokenize", "--decode", "--tokenizer", str(tokenizer_dir / "tokenizer.json")], ids_text)
        if decoded.splitlines() != [line["decoded"] for line in single]:
            print(f"{name} --decode: text differs from the reference")
            failures += 1
    bad = subprocess.run([nibble, "tokenize", "--tokenizer", str(data / "absent.json")], capture_output=True)
    if bad.returncode == 0 or b"absent.json" not in bad.stderr:
        print("a missing --tokenizer file must fail naming it")
        failures += 1
    print("cli_tokenize_test:", "FAILED" if failures else "passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
