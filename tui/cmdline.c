/* The line editor under ':': UTF-8 aware cursor movement, history, and
 * the Tab key handed to the command completer. */
#include <curses.h>
#include <stdio.h>
#include <string.h>

#include "tui.h"

void sl_cmdline_open(sl_cmdline *c, const char *prefill)
{
	c->active = true;
	snprintf(c->buf, sizeof c->buf, "%s", prefill ? prefill : "");
	c->len = c->pos = (int)strlen(c->buf);
	c->hist_at = c->n_hist;
	c->comp_stem[0] = c->comp_last[0] = 0;
}

static bool continuation(unsigned char b)
{
	return (b & 0xc0) == 0x80;
}

static int prev_char(const sl_cmdline *c, int pos)
{
	do
		pos--;
	while (pos > 0 && continuation((unsigned char)c->buf[pos]));
	return pos < 0 ? 0 : pos;
}

static int next_char(const sl_cmdline *c, int pos)
{
	do
		pos++;
	while (pos < c->len && continuation((unsigned char)c->buf[pos]));
	return pos > c->len ? c->len : pos;
}

static void erase_range(sl_cmdline *c, int from, int to)
{
	memmove(c->buf + from, c->buf + to, (size_t)(c->len - to + 1));
	c->len -= to - from;
	c->pos = from;
}

static void insert(sl_cmdline *c, const char *s, int n)
{
	if (c->len + n >= (int)sizeof c->buf)
		return;
	memmove(c->buf + c->pos + n, c->buf + c->pos, (size_t)(c->len - c->pos + 1));
	memcpy(c->buf + c->pos, s, (size_t)n);
	c->len += n;
	c->pos += n;
}

static int utf8_encode(int cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 63));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | cp >> 12);
		out[1] = (char)(0x80 | (cp >> 6 & 63));
		out[2] = (char)(0x80 | (cp & 63));
		return 3;
	}
	out[0] = (char)(0xf0 | cp >> 18);
	out[1] = (char)(0x80 | (cp >> 12 & 63));
	out[2] = (char)(0x80 | (cp >> 6 & 63));
	out[3] = (char)(0x80 | (cp & 63));
	return 4;
}

static void remember(sl_cmdline *c)
{
	if (!c->len || (c->n_hist && !strcmp(c->hist[c->n_hist - 1], c->buf)))
		return;
	if (c->n_hist == 32) {
		memmove(c->hist[0], c->hist[1], sizeof c->hist - sizeof c->hist[0]);
		c->n_hist--;
	}
	snprintf(c->hist[c->n_hist++], sizeof c->hist[0], "%s", c->buf);
}

static void recall(sl_cmdline *c, int at)
{
	if (at < 0 || at > c->n_hist)
		return;
	c->hist_at = at;
	snprintf(c->buf, sizeof c->buf, "%s", at < c->n_hist ? c->hist[at] : "");
	c->len = c->pos = (int)strlen(c->buf);
}

int sl_cmdline_key(sl_cmdline *c, const sl_key *k)
{
	bool ctrl = k->mods & SL_KMOD_CTRL;
	if (k->code != SL_KEY_TAB)
		c->comp_stem[0] = c->comp_last[0] = 0;
	if (ctrl) {
		switch (k->code) {
		case 'a': c->pos = 0; break;
		case 'e': c->pos = c->len; break;
		case 'u': erase_range(c, 0, c->pos); break;
		case 'k': erase_range(c, c->pos, c->len); break;
		case 'w': {
			int p = c->pos;
			while (p > 0 && c->buf[p - 1] == ' ')
				p--;
			while (p > 0 && c->buf[p - 1] != ' ')
				p--;
			erase_range(c, p, c->pos);
			break;
		}
		case 'c': case 'g': c->active = false; return SL_CL_CANCEL;
		}
		return SL_CL_EDIT;
	}
	switch (k->code) {
	case SL_KEY_ESC:
		c->active = false;
		return SL_CL_CANCEL;
	case SL_KEY_ENTER:
		remember(c);
		c->active = false;
		return SL_CL_SUBMIT;
	case SL_KEY_TAB:
		if (c->pos == c->len)
			return SL_CL_COMPLETE;
		return SL_CL_EDIT;
	case SL_KEY_BACKSPACE:
		if (!c->len) { /* backspace on an empty line leaves it, as in vi */
			c->active = false;
			return SL_CL_CANCEL;
		}
		if (c->pos > 0)
			erase_range(c, prev_char(c, c->pos), c->pos);
		return SL_CL_EDIT;
	case SL_KEY_DELETE:
		if (c->pos < c->len)
			erase_range(c, c->pos, next_char(c, c->pos));
		return SL_CL_EDIT;
	case SL_KEY_LEFT: if (c->pos > 0) c->pos = prev_char(c, c->pos); return SL_CL_EDIT;
	case SL_KEY_RIGHT: if (c->pos < c->len) c->pos = next_char(c, c->pos); return SL_CL_EDIT;
	case SL_KEY_HOME: c->pos = 0; return SL_CL_EDIT;
	case SL_KEY_END: c->pos = c->len; return SL_CL_EDIT;
	case SL_KEY_UP: recall(c, c->hist_at - 1); return SL_CL_EDIT;
	case SL_KEY_DOWN: recall(c, c->hist_at + 1); return SL_CL_EDIT;
	}
	if (k->code >= ' ' && k->code < SL_KEY_UP && k->code != 127) {
		char u[4];
		insert(c, u, utf8_encode(k->code, u));
	}
	return SL_CL_EDIT;
}

void sl_cmdline_set_word(sl_cmdline *c, const char *word)
{
	int p = c->len;
	while (p > 0 && c->buf[p - 1] != ' ')
		p--;
	c->pos = c->len;
	erase_range(c, p, c->len);
	insert(c, word, (int)strlen(word));
}

void sl_cmdline_draw(const sl_cmdline *c, int y, int w)
{
	sl_fill(y, 0, w, SL_R_NORMAL);
	sl_text(y, 0, 1, SL_R_ACCENT, ":");
	/* Scroll so the cursor stays on screen. */
	int start = 0, cw;
	char vis[sizeof c->buf];
	for (;;) {
		snprintf(vis, sizeof vis, "%.*s", c->pos - start, c->buf + start);
		cw = sl_text_width(vis);
		if (cw <= w - 2 || start >= c->pos)
			break;
		start = next_char(c, start);
	}
	sl_text(y, 1, w - 1, SL_R_NORMAL, c->buf + start);
	move(y, 1 + cw);
}
