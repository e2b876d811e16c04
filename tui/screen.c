/* The terminal: ncursesw draws, libtermkey reads keys and mouse events
 * from the same terminal, and signals reach the main loop through the
 * self-pipe. Whatever happens the terminal is given back as it was: on a
 * clean exit, on exit() from anywhere, and on crash signals, whose handler
 * restores the saved terminal modes with async-signal-safe calls before
 * the signal is raised again for its default action (or a sanitizer's). */
#define _GNU_SOURCE
#include <curses.h>
#include <errno.h>
#include <fcntl.h>
#include <langinfo.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <termkey.h>
#include <unistd.h>

#include "tui.h"

/* Mouse reporting on: clicks (1000) in the classic encoding. Not the SGR
 * form (1006): terminal descriptions whose kmous is "\E[<" (xterm's, since
 * ncurses 6.1) make libtermkey misread SGR reports as keys. */
static const char mouse_on[] = "\033[?1000h";
/* Mouse off, main screen, cursor shown, attributes reset. */
static const char restore_seq[] = "\033[?1000l\033[0m\033[?25h\033[?1049l\r\n";

static struct {
	struct termios saved;
	bool have_saved;
	volatile sig_atomic_t active;
	int wake_fd;
	struct sigaction old[32];
	SCREEN *scr;
} S;

static const int crash_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
static const int wake_signals[] = {SIGWINCH, SIGTERM, SIGHUP, SIGINT, SIGQUIT};

static void restore_raw(void)
{
	if (!S.active)
		return;
	S.active = 0;
	if (S.have_saved)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &S.saved);
	ssize_t ignored = write(STDOUT_FILENO, restore_seq, sizeof restore_seq - 1);
	(void)ignored;
}

static void on_crash(int sig)
{
	restore_raw();
	sigaction(sig, &S.old[sig], NULL);
	raise(sig);
}

static void on_wake_signal(int sig)
{
	int e = errno;
	/* Terminating signals travel as their number, the others as a letter. */
	char b = sig == SIGWINCH ? 'w' : sig == SIGINT ? 'c' : (char)sig;
	ssize_t ignored = write(S.wake_fd, &b, 1);
	(void)ignored;
	errno = e;
}

static void at_exit(void)
{
	if (S.active) {
		endwin();
		restore_raw();
	}
}

sl_status sl_screen_open(sl_tui *t, sl_error *err)
{
	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
		return sl_errorf(err, SL_ERR_ARG,
		                 "the workbench needs a terminal; for scripts use a subcommand (slimlab --help)");
	S.have_saved = tcgetattr(STDIN_FILENO, &S.saved) == 0;
	S.wake_fd = t->wake[1];
	S.scr = newterm(NULL, stdout, stdin);
	if (!S.scr)
		return sl_errorf(err, SL_ERR_UNSUPPORTED, "cannot drive this terminal (TERM=%s)",
		                 getenv("TERM") ? getenv("TERM") : "unset");
	S.active = 1;
	atexit(at_exit);
	raw();
	noecho();
	nonl();
	curs_set(0);
	t->app.utf8 = !strcmp(nl_langinfo(CODESET), "UTF-8");
	sl_draw_init(t->app.utf8);

	t->tk = termkey_new(STDIN_FILENO, TERMKEY_FLAG_CTRLC | (t->app.utf8 ? TERMKEY_FLAG_UTF8 : 0));
	if (!t->tk) {
		sl_screen_close(t);
		return sl_errorf(err, SL_ERR_UNSUPPORTED, "cannot read keys from this terminal");
	}
	/* A lone Esc cancels a job: wait only briefly for a sequence after it. */
	termkey_set_waittime(t->tk, 25);
	fputs(mouse_on, stdout);
	fflush(stdout);

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_crash;
	for (size_t i = 0; i < sizeof crash_signals / sizeof *crash_signals; i++)
		sigaction(crash_signals[i], &sa, &S.old[crash_signals[i]]);
	sa.sa_handler = on_wake_signal;
	sa.sa_flags = SA_RESTART;
	for (size_t i = 0; i < sizeof wake_signals / sizeof *wake_signals; i++)
		sigaction(wake_signals[i], &sa, &S.old[wake_signals[i]]);
	return SL_OK;
}

void sl_screen_close(sl_tui *t)
{
	if (!S.active)
		return;
	for (size_t i = 0; i < sizeof crash_signals / sizeof *crash_signals; i++)
		sigaction(crash_signals[i], &S.old[crash_signals[i]], NULL);
	for (size_t i = 0; i < sizeof wake_signals / sizeof *wake_signals; i++)
		sigaction(wake_signals[i], &S.old[wake_signals[i]], NULL);
	if (t->tk) {
		termkey_destroy(t->tk);
		t->tk = NULL;
	}
	endwin();
	restore_raw();
	delscreen(S.scr);
	S.scr = NULL;
}

void sl_screen_resize(sl_tui *t)
{
	(void)t;
	struct winsize ws;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0)
		resizeterm(ws.ws_row, ws.ws_col);
	clearok(curscr, TRUE); /* the terminal may have reflowed what was there */
}

bool sl_screen_translate(sl_tui *t, TermKeyKey *in, sl_key *out)
{
	memset(out, 0, sizeof *out);
	if (in->modifiers & TERMKEY_KEYMOD_SHIFT)
		out->mods |= SL_KMOD_SHIFT;
	if (in->modifiers & TERMKEY_KEYMOD_ALT)
		out->mods |= SL_KMOD_ALT;
	if (in->modifiers & TERMKEY_KEYMOD_CTRL)
		out->mods |= SL_KMOD_CTRL;
	switch (in->type) {
	case TERMKEY_TYPE_UNICODE:
		out->code = (int)in->code.codepoint;
		/* Shifted letters arrive as capitals; the modifier adds nothing. */
		out->mods &= ~SL_KMOD_SHIFT;
		return true;
	case TERMKEY_TYPE_FUNCTION:
		if (in->code.number < 1 || in->code.number > 12)
			return false;
		out->code = SL_KEY_F1 + in->code.number - 1;
		return true;
	case TERMKEY_TYPE_KEYSYM:
		switch (in->code.sym) {
		case TERMKEY_SYM_UP: out->code = SL_KEY_UP; break;
		case TERMKEY_SYM_DOWN: out->code = SL_KEY_DOWN; break;
		case TERMKEY_SYM_LEFT: out->code = SL_KEY_LEFT; break;
		case TERMKEY_SYM_RIGHT: out->code = SL_KEY_RIGHT; break;
		case TERMKEY_SYM_PAGEUP: out->code = SL_KEY_PGUP; break;
		case TERMKEY_SYM_PAGEDOWN: out->code = SL_KEY_PGDN; break;
		case TERMKEY_SYM_HOME: out->code = SL_KEY_HOME; break;
		case TERMKEY_SYM_END: out->code = SL_KEY_END; break;
		case TERMKEY_SYM_ENTER: out->code = SL_KEY_ENTER; break;
		case TERMKEY_SYM_TAB: out->code = SL_KEY_TAB; break;
		case TERMKEY_SYM_BACKSPACE: case TERMKEY_SYM_DEL: out->code = SL_KEY_BACKSPACE; break;
		case TERMKEY_SYM_DELETE: out->code = SL_KEY_DELETE; break;
		case TERMKEY_SYM_ESCAPE: out->code = SL_KEY_ESC; break;
		case TERMKEY_SYM_SPACE: out->code = ' '; break;
		default: return false;
		}
		return true;
	case TERMKEY_TYPE_MOUSE: {
		TermKeyMouseEvent ev;
		int button, line, col;
		if (termkey_interpret_mouse(t->tk, in, &ev, &button, &line, &col) != TERMKEY_RES_KEY ||
		    ev != TERMKEY_MOUSE_PRESS)
			return false;
		out->code = SL_KEY_MOUSE;
		out->button = button;
		out->y = line - 1; /* libtermkey counts from 1 */
		out->x = col - 1;
		return true;
	}
	default:
		return false;
	}
}
