#!/usr/bin/env python3
"""On the GPU machine: Hugging Face `tokenizers` (Rust) as a second reference for nibble's tokenizer.json reader.

CI holds nibble's ids and decoded text equal to transformers.js' (`tests/support/hf_tokenizer_reference.js`
writes `.test-data/reference/<name>.jsonl`: text, ids, decoded). This script, run where `tokenizers` is
installed, encodes every line of those files again with `tokenizers.Tokenizer` (no special tokens added) and
decodes the reference ids (special tokens skipped), and prints a table of mismatches per tokenizer; the first
few mismatches go under it. Exit status 1 on any mismatch.

    python3 scripts/device/hf-tokenizers-check.py DATA_DIR      (DATA_DIR holds tokenizers/ and reference/)
"""
import json
import pathlib
import sys

import tokenizers


def main() -> int:
    data = pathlib.Path(sys.argv[1])
    print(f"tokenizers {tokenizers.__version__}\n")
    print("| tokenizer | lines | ids differ | decoded differs |")
    print("|---|---:|---:|---:|")
    examples, failed = [], False
    for reference in sorted((data / "reference").glob("*.jsonl")):
        name = reference.stem
        tokenizer = tokenizers.Tokenizer.from_file(str(data / "tokenizers" / name / "tokenizer.json"))
        lines = id_mismatches = decode_mismatches = 0
        for line in reference.read_text(encoding="utf-8").splitlines():
            case = json.loads(line)
            lines += 1
            ids = tokenizer.encode(case["text"], add_special_tokens=False).ids
            if ids != case["ids"]:
                id_mismatches += 1
                examples.append(f"{name}: ids of {case['text'][:60]!r}: {ids[:12]} vs {case['ids'][:12]}")
            decoded = tokenizer.decode(case["ids"], skip_special_tokens=True)
            if decoded != case["decoded"]:
                decode_mismatches += 1
                examples.append(f"{name}: decode of {case['text'][:60]!r}: {decoded[:60]!r} vs {case['decoded'][:60]!r}")
        failed |= id_mismatches + decode_mismatches > 0
        print(f"| {name} | {lines} | {id_mismatches} | {decode_mismatches} |")
    for example in examples[:20]:
        print("\n" + example)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
