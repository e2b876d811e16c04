/* What the SVG pictures share: text escaped for XML, and how wide a line
 * of text is set, so that a picture can be made wide enough for it. */
#include "svg.h"

#include <string.h>

void sl_svg_escape(sl_buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '<')
			sl_buf_printf(b, "&lt;");
		else if (*s == '>')
			sl_buf_printf(b, "&gt;");
		else if (*s == '&')
			sl_buf_printf(b, "&amp;");
		else if (*s == '"')
			sl_buf_printf(b, "&quot;");
		else
			sl_buf_put(b, s, 1);
	}
}

/* The mean advances are more than words of lower-case letters take. */
double sl_svg_text_px(const char *s, int size, bool bold)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80; /* characters, not UTF-8 bytes */
	return (double)n * size * (bold ? 0.66 : 0.60);
}

const char *sl_svg_tail_within(const char *path, int size, double px)
{
	if (sl_svg_text_px(path, size, false) <= px)
		return path;
	double room = px - sl_svg_text_px("…", size, false);
	const char *s = path;
	while (*s && sl_svg_text_px(s, size, false) > room)
		do
			s++;
		while (((unsigned char)*s & 0xc0) == 0x80);
	const char *slash = strchr(s, '/');
	return slash ? slash : s;
}

