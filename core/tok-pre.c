/* The pre-tokenizer types GGUF vocabularies name in tokenizer.ggml.pre: for
 * each, the patterns that split text into words before BPE merges them.
 * Each pattern splits every piece the previous ones left (see
 * sl_split_text), as a tokenizer.json's chain of Split steps does. The
 * patterns are the models' own, as their tokenizer.json files state them,
 * and the splits are the ones llama.cpp makes for each name (its test
 * vectors check five of them); "default", for vocabularies that name none,
 * is llama.cpp's own guess. */
#include "tok-internal.h"

#include <string.h>

/* GPT-2's split: contractions, words, numbers, other symbols, spaces. */
const char sl_tok_gpt2_pattern[] =
	"'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static const char *const p_default[] = {
	"[\\p{P}\\$\\+<=>\\^~\\|]+", sl_tok_gpt2_pattern, "\\p{N}+", "[0-9][0-9][0-9]", NULL,
};

static const char *const p_gpt2[] = {sl_tok_gpt2_pattern, NULL};

/* Llama 3: case-insensitive contractions, numbers in groups of three. Its
 * tokenizer.json says (?i:'s|'t|'re|'ve|'m|'ll|'d); llama.cpp folds ASCII
 * only, where PCRE2 would also take "ſ" (U+017F) for "s", so the classes
 * are spelled out. */
#define CONTRACTIONS "'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]"
static const char *const p_llama3[] = {
	CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"
	"| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
	NULL,
};

/* Qwen2: Llama 3's split with single digits. */
static const char *const p_qwen2[] = {
	CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"
	"| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
	NULL,
};

/* Its "\\s+$" is written with a lookbehind: a piece is searched once from
 * its start, so the match is the same, but PCRE2's interpreter (without
 * the JIT) no longer retries from every space of a long run that does not
 * end the piece. */
static const char *const p_deepseek_llm[] = {
	"[\r\n]",
	"\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
	"\\s?[!-/:-~！-／：-～‘-‟　-。]+",
	"(?<!\\s)\\s+$",
	"[一-龥ࠀ-一가-퟿]+",
	"\\p{N}+",
	NULL,
};

static const char *const p_deepseek_coder[] = {
	"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[一-龥ࠀ-一가-퟿]+", "\\p{N}", NULL,
};

static const char *const p_deepseek_v3[] = {
	"\\p{N}{1,3}",
	"[一-龥぀-ゟ゠-ヿ]+",
	"[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+"
	"| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
	NULL,
};

static const char *const p_falcon[] = {
	"[\\p{P}\\$\\+<=>\\^~\\|`]+", sl_tok_gpt2_pattern, "[0-9][0-9][0-9]", NULL,
};

/* StarCoder and kin: every digit on its own. */
static const char *const p_starcoder[] = {"\\p{N}", sl_tok_gpt2_pattern, NULL};

/* BLOOM and Poro: words with their leading space, punctuation apart. */
static const char *const p_bloom[] = {" ?[^(\\s|.,!?…。，、।۔،)]+", NULL};

static const char *const p_viking[] = {" ?[^(\\s|.,!?…。，、।۔،)]+", "\\p{N}", NULL};

/* Mistral's Tekken: words split before capitals. */
static const char *const p_tekken[] = {
	"[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
	"|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*"
	"|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
	NULL,
};

static const char *const p_chameleon[] = {
	"<sentinel:[0-9]+>",
	"(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
	"([\\t\\n]|    |  )",
	"\\p{N}",
	"[\\p{P}!-/:-@\\[-`{-~]",
	sl_tok_gpt2_pattern,
	NULL,
};

static const sl_tok_pre_type types[] = {
	{"default", false, p_default},
	{"llama3 llama-v3 llama-bpe falcon3", true, p_llama3},
	{"dbrx smaug-bpe chatglm-bpe", false, p_llama3},
	{"gpt-2 phi-2 jina-es jina-de gigachat jina-v1-en jina-v2-es jina-v2-de jina-v2-code "
	 "roberta-bpe mpt olmo jais", false, p_gpt2},
	{"qwen2 deepseek-r1-qwen megrez stablelm2", false, p_qwen2},
	{"deepseek-llm", false, p_deepseek_llm},
	{"deepseek-coder", false, p_deepseek_coder},
	{"deepseek-v3", false, p_deepseek_v3},
	{"falcon", false, p_falcon},
	{"starcoder refact command-r smollm codeshell exaone minerva-7b", false, p_starcoder},
	{"poro-chat bloom gpt3-finnish", false, p_bloom},
	{"viking", false, p_viking},
	{"tekken", true, p_tekken},
	{"chameleon", false, p_chameleon},
};

const sl_tok_pre_type *sl_tok_pre_lookup(const char *name)
{
	size_t n = strlen(name);
	if (n == 0)
		return NULL;
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
		for (const char *p = types[i].names; (p = strstr(p, name)); p += n)
			if ((p == types[i].names || p[-1] == ' ') && (p[n] == ' ' || p[n] == 0))
				return &types[i];
	}
	return NULL;
}
