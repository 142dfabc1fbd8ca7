// The reference for nibble's tokenizer.json reader: @lenml/tokenizers (transformers.js' tokenizers, an
// implementation independent of nibble's) encodes and decodes a corpus, one JSON line per text:
//   {"text": ..., "ids": [...], "decoded": ...}
// ids: encode(text) without special tokens added (add_special_tokens: false); decoded: decode(ids) with
// special tokens skipped and no clean-up of tokenization spaces (the tokenizers library's own decode).
//
//   node hf_tokenizer_reference.js LENML_MAIN_JS TOKENIZER_DIR STORIES_TXT CASES_JSONL > out.jsonl
//
// The corpus: each TinyStories line whole and cut into sentences, groups of lines joined by newlines, the
// hand-written cases (CASES_JSONL: one JSON string per line), and generated ones (numbers, runs of
// whitespace, the tokenizer's own added tokens spelled inside text).
'use strict';
const fs = require('fs');
const path = require('path');

const [libraryPath, tokenizerDir, storiesPath, casesPath] = process.argv.slice(2);
const { TokenizerLoader } = require(path.resolve(libraryPath));
const readJson = (file) => JSON.parse(fs.readFileSync(path.join(tokenizerDir, file), 'utf8'));
const tokenizerJSON = readJson('tokenizer.json');
const tokenizer = TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig: readJson('tokenizer_config.json') });

const corpus = [];
const stories = fs.readFileSync(storiesPath, 'utf8').split('\n').filter((line) => line.length > 0);
for (const story of stories) {
  corpus.push(story);
  for (const sentence of story.split(/(?<=[.!?]["\u201d]?)\s+/)) corpus.push(sentence);
}
for (let i = 0; i + 3 <= stories.length; i += 3) {
  corpus.push(stories.slice(i, i + 3).join(i % 2 ? '\n\n' : '\n'));
}
for (const line of fs.readFileSync(casesPath, 'utf8').split('\n')) {
  if (line.length > 0) corpus.push(JSON.parse(line));
}
for (let i = 0; i < 120; ++i) {
  const n = (i * 7919 + 13) % 1000003;
  corpus.push(`${n}`, `x=${n}.${i}`, `${n},${(n * 31) % 997} and ${-i}`);
}
for (let n = 1; n <= 24; ++n) {
  for (const space of [' ', '\t', '\n', '\r\n', ' \t']) {
    const run = space.repeat(n);
    corpus.push(`a${run}b`, `${run}x`, `x${run}`, run);
  }
}
const added = (tokenizerJSON.added_tokens || []).map((token) => token.content);
for (const content of added.filter((_, i) => i < 40 || i % 97 === 0)) {
  corpus.push(content, `Hello ${content} world`, `x${content}y`, `${content}${content} ${content}\n`);
}

for (const text of corpus) {
  const ids = tokenizer.encode(text, { add_special_tokens: false });
  const decoded = ids.length === 0 ? '' : tokenizer.decode(ids, { skip_special_tokens: true, clean_up_tokenization_spaces: false });
  process.stdout.write(JSON.stringify({ text, ids, decoded }) + '\n');
}
