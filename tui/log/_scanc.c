/* The attach scan of tui.log.scan, compiled: one pass over a segment's bytes (`matches`), the
 * plain prefixes (`prefix`), and the lines every epoch writes read and folded per epoch
 * (`hot_matches`, `blocks`; see "hot lines" below).
 *
 *
 * `matches(buf, start, end, bulk)` returns exactly what tui.log.scan.py_matches returns for the
 * same arguments: the matches of SCAN_RE (bulk false) or SCAN_BULK_RE (bulk true) that
 * `finditer(buf, start, end)` yields, as (code, match start, match end) tuples, the W / Wp matches
 * only counted (and the last W match's start kept), plus the segment's newline count and (bulk
 * only) its count of Hydra WARNING prefixes. Python's re visits every ` - ` and tries a long alternation there,
 * and bytes.count walks the bytes once per needle; this walks the bytes once, 16 at a time (SSE2,
 * a byte at a time elsewhere), counting newlines and testing the few bytes around each ` - `. tests/test_scanc.py checks
 * both give the same result on every test log and on generated ones.
 *
 * The regex semantics kept here (see scan.py): the searched string ends at `end` (lookaheads stop
 * there), lookbehinds may look before `start` (to the buffer's start), a failed ` - ` is retried
 * one byte on, a match resumes the search at its end, `[^\n]*` (after every group but cont) runs
 * to the next newline.
 */
#define _GNU_SOURCE /* memmem */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

enum { CONT = 0, GS = 1, LOWV = 2, EV = 3 };

typedef struct {
    const unsigned char *b; /* the buffer */
    Py_ssize_t end;         /* the searched string's end */
    Py_ssize_t len;         /* the buffer's */
} Buf;

#define LIT(s) s, (sizeof(s) - 1)

static inline int has(const Buf *x, Py_ssize_t q, const char *s, Py_ssize_t n) {
    return q >= 0 && q + n <= x->end && memcmp(x->b + q, s, (size_t)n) == 0;
}

/* lookbehind: the n bytes before q are s (the buffer's start, not `start`, bounds it) */
static inline int behind(const Buf *x, Py_ssize_t q, const char *s, Py_ssize_t n) {
    return q - n >= 0 && memcmp(x->b + q - n, s, (size_t)n) == 0;
}

static inline int is_word(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static inline int is_ws(unsigned char c) { /* [ \t\x0b\x0c] */
    return c == ' ' || c == '\t' || c == 0x0b || c == 0x0c;
}

static inline int is_space(unsigned char c) { /* bytes \s */
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* _STARTS at q: the length of its first matching alternative (sre's order), 0 if none */
#define TRY(s)                    \
    if (has(x, q, LIT(s)))        \
        return sizeof(s) - 1;
static Py_ssize_t starts(const Buf *x, Py_ssize_t q) {
    if (q >= x->end)
        return 0;
    unsigned char c = x->b[q];
    if (c >= 0x80)
        return 1;
    switch (c) {
    case '[': {
        TRY("[exit") TRY("[error") TRY("[signal") TRY("[epoch-end") TRY("[metrics") TRY("[data-filter")
        TRY("[GRAD-MONITOR")
        Py_ssize_t r = q + 1, k = 0; /* [\w\x80-\xff]{1,80}+ : possessive */
        while (k < 80 && r + k < x->end && (is_word(x->b[r + k]) || x->b[r + k] >= 0x80))
            k++;
        if (k == 0)
            return 0;
        r += k;
        if (has(x, r, LIT("] Epoch ")))
            return r + 8 - q;
        if (has(x, r, LIT("] Validation loss")))
            return r + 17 - q;
        return 0;
    }
    case 'E':
        return has(x, q, LIT("Epoch ")) && q + 6 < x->end && x->b[q + 6] >= '0' && x->b[q + 6] <= '9' ? 7 : 0;
    case 'S':
        TRY("Sharpe: ") TRY("Starting ") return 0;
    case 'V':
        TRY("Val metrics") TRY("Val Metrics") return 0;
    case 't':
        TRY("train/total_loss: ") return 0;
    case 'v':
        TRY("val/loss: ") return 0;
    case 'L':
        TRY("Learning rate: ") TRY("Low prediction variance") return 0;
    case 'B':
        TRY("Best validation loss") TRY("Best model saved") return 0;
    case 'C':
        TRY("Checkpoint saved: ") TRY("Creating data loaders") return 0;
    case 'A':
        TRY("Achieved Sharpe") return 0;
    case 'G':
        TRY("GPU: ") return 0;
    case 'U':
        TRY("Using device: ") return 0;
    case 'F':
        TRY("Found ") TRY("Fitting OnlineRobustScaler") return 0;
    case 'O':
        TRY("OnlineRobustScaler fitted") return 0;
    case 'I':
        TRY("Iterable datasets ready") return 0;
    case 'D':
        TRY("Data loaders created") return 0;
    case 'r':
        TRY("runctl engine ") TRY("runctl callback ") return 0;
    case '=':
        TRY("=== Training Complete") return 0;
    default:
        return 0;
    }
}

/* _WS then _STARTS at q (the whitespace is possessive): the end of the match, 0 if none */
static Py_ssize_t ws_starts(const Buf *x, Py_ssize_t q) {
    while (q < x->end && is_ws(x->b[q]))
        q++;
    Py_ssize_t n = starts(x, q);
    return n ? q + n : 0;
}

/* the lowv group at q: `(?<=\]\[WARNING\] - )Low prediction variance for horizon \d+: scale_ratio=[^,\s]` */
static int lowv(const Buf *x, Py_ssize_t q) {
    if (!behind(x, q, LIT("][WARNING] - ")) || !has(x, q, LIT("Low prediction variance for horizon ")))
        return 0;
    Py_ssize_t r = q + 36, d = r;
    while (d < x->end && x->b[d] >= '0' && x->b[d] <= '9')
        d++;
    if (d == r || !has(x, d, LIT(": scale_ratio=")))
        return 0;
    d += 14;
    return d < x->end && x->b[d] != ',' && !is_space(x->b[d]);
}

/* the bulk lines SCAN_BULK_RE rejects after an INFO/WARNING Hydra prefix */
static int bulk_line(const Buf *x, Py_ssize_t q) {
    if (q < x->end && x->b[q] == '[')
        return has(x, q, LIT("[progress] ")) || has(x, q, LIT("[EDGE-TS] ")) ||
               has(x, q, LIT("[edges-fallback] ")) || has(x, q, LIT("[DEBUG-EDGE] ")) ||
               has(x, q, LIT("[DEBUG-KEYS] ")) || has(x, q, LIT("[GAT-GRAD] ")) || has(x, q, LIT("[GUARD] "));
    return has(x, q, LIT("Built correlation graph: ")) || has(x, q, LIT("GraphBuilder "));
}

static Py_ssize_t line_end(const Buf *x, Py_ssize_t q) {
    if (q >= x->end)
        return x->end;
    const unsigned char *e = memchr(x->b + q, '\n', (size_t)(x->end - q));
    return e ? (Py_ssize_t)(e - x->b) : x->end;
}

/* _GROUPS at q (right after the ` - ` at q - 3): the group's code, or -1 */
static int groups(const Buf *x, Py_ssize_t q, Py_ssize_t *mend) {
    Py_ssize_t p = q - 3, e;
    if (q < x->end && x->b[q] == '\n' && (e = ws_starts(x, q + 1)) != 0) {
        *mend = e; /* cont has no `[^\n]*` after it */
        return CONT;
    }
    if (has(x, q, LIT("[GRAD-MONITOR] step="))) {
        *mend = line_end(x, q);
        return GS;
    }
    if (lowv(x, q)) {
        *mend = line_end(x, q);
        return LOWV;
    }
    if (ws_starts(x, q) || (p >= 1 && x->b[p - 1] >= 'A' && x->b[p - 1] <= 'Z') ||
        (p >= 2 && x->b[p - 1] == ']' && (x->b[p - 2] == 'R' || x->b[p - 2] == 'L'))) {
        *mend = line_end(x, q);
        return EV;
    }
    return -1;
}

typedef struct Hot Hot;
static int hot_line(const Buf *x, Py_ssize_t p, Py_ssize_t le, Hot *h);

typedef struct {
    PyObject *out;                            /* [(code, start, end)] */
    Py_ssize_t start, w_total, w_matches, last_w;
    Py_ssize_t resume;                        /* the search goes on from here (after the last match) */
    int bulk;
    int hot;                                  /* hot_matches: hot lines go to `hots`, not `out` */
    char *hots;                               /* Hot[nhot], capacity cap */
    Py_ssize_t nhot, cap;
} Scan;

static size_t hot_size(void);

/* the regex's attempt at the ` - ` at p; -1 on a Python error */
static int anchor(Scan *st, const Buf *x, Py_ssize_t p) {
    const unsigned char *b = x->b;
    Py_ssize_t q = p + 3;
    int wprefix = p >= 2 && b[p - 1] == ']' && b[p - 2] == 'G' && behind(x, q, LIT("][WARNING] - "));
    if (st->bulk && wprefix && p - 10 >= st->start)
        st->w_total++;
    if (p < st->resume)
        return 0; /* inside a match's `[^\n]*` */
    int rejected = st->bulk ? (p >= 2 && b[p - 1] == ']' && (b[p - 2] == 'O' || b[p - 2] == 'G') && bulk_line(x, q))
                            : (p >= 2 && b[p - 1] == ']' && b[p - 2] == 'O' && has(x, q, LIT("[progress] ")));
    Py_ssize_t mend = q;
    int code = rejected ? -1 : groups(x, q, &mend);
    if (code == EV && st->hot) {
        if (st->nhot == st->cap) {
            Py_ssize_t cap = st->cap ? 2 * st->cap : 256;
            char *more = PyMem_Realloc(st->hots, (size_t)cap * hot_size());
            if (more == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            st->hots = more, st->cap = cap;
        }
        Py_ssize_t le = mend;
        if (le == x->end) { /* the line as tui.log.scan reads it: to the next newline in the buffer */
            const unsigned char *e = memchr(b + le, '\n', (size_t)(x->len - le));
            le = e ? (Py_ssize_t)(e - b) : x->len;
        }
        if (hot_line(x, p, le, (Hot *)(st->hots + (size_t)st->nhot * hot_size()))) {
            st->nhot++;
            st->resume = mend;
            return 0;
        }
    }
    if (code >= 0) {
        PyObject *t = Py_BuildValue("(inn)", code, p, mend);
        if (t == NULL || PyList_Append(st->out, t) < 0) {
            Py_XDECREF(t);
            return -1;
        }
        Py_DECREF(t);
        st->resume = mend;
    } else if (!st->bulk && wprefix && !rejected) {
        st->w_matches++;
        if (has(x, q, LIT("[progress] "))) {
            st->resume = q + 11;
        } else {
            st->last_w = p;
            st->resume = q;
        }
    }
    return 0;
}

static PyObject *run_scan(PyObject *args, int hot) {
    Py_buffer view;
    Py_ssize_t start, end;
    int bulk;
    if (!PyArg_ParseTuple(args, "y*nnp", &view, &start, &end, &bulk))
        return NULL;
    if (start < 0)
        start = 0;
    if (end > view.len)
        end = view.len;
    Scan st = {PyList_New(0), start, 0, 0, -1, start, bulk, hot, NULL, 0, 0};
    if (st.out == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    Buf x = {(const unsigned char *)view.buf, end, view.len};
    const unsigned char *b = x.b;
    Py_ssize_t newlines = 0, i = start;
#ifdef __SSE2__
    /* 16 bytes at a time: a bit per ` - ` start; newlines summed per byte lane (-1 per match),
       folded into `newlines` every 255 blocks before a lane can wrap */
    const __m128i nl = _mm_set1_epi8('\n'), sp = _mm_set1_epi8(' '), dash = _mm_set1_epi8('-');
    const __m128i zero = _mm_setzero_si128();
    __m128i lanes = zero;
    int blocks = 0;
    for (; i + 18 <= end; i += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(b + i));
        __m128i a1 = _mm_loadu_si128((const __m128i *)(b + i + 1));
        __m128i a2 = _mm_loadu_si128((const __m128i *)(b + i + 2));
        lanes = _mm_sub_epi8(lanes, _mm_cmpeq_epi8(a, nl));
        if (++blocks == 255) {
            __m128i sad = _mm_sad_epu8(lanes, zero);
            newlines += _mm_cvtsi128_si32(sad) + _mm_extract_epi16(sad, 4);
            lanes = zero;
            blocks = 0;
        }
        unsigned m = (unsigned)_mm_movemask_epi8(_mm_and_si128(
            _mm_and_si128(_mm_cmpeq_epi8(a, sp), _mm_cmpeq_epi8(a1, dash)), _mm_cmpeq_epi8(a2, sp)));
        while (m) {
            if (anchor(&st, &x, i + __builtin_ctz(m)) < 0)
                goto fail;
            m &= m - 1;
        }
    }
    {
        __m128i sad = _mm_sad_epu8(lanes, zero);
        newlines += _mm_cvtsi128_si32(sad) + _mm_extract_epi16(sad, 4);
    }
#endif
    for (; i < end; i++) {
        newlines += b[i] == '\n';
        if (i + 3 <= end && b[i] == ' ' && b[i + 1] == '-' && b[i + 2] == ' ' && anchor(&st, &x, i) < 0)
            goto fail;
    }
    PyBuffer_Release(&view);
    PyObject *res;
    if (hot) {
        res = Py_BuildValue("(Nnnnny#)", st.out, newlines, st.w_total, st.w_matches, st.last_w,
                            st.hots ? st.hots : "", (Py_ssize_t)((size_t)st.nhot * hot_size()));
        PyMem_Free(st.hots);
    } else {
        res = Py_BuildValue("(Nnnnn)", st.out, newlines, st.w_total, st.w_matches, st.last_w);
    }
    return res;
fail:
    Py_DECREF(st.out);
    PyMem_Free(st.hots);
    PyBuffer_Release(&view);
    return NULL;
}

static PyObject *matches(PyObject *self, PyObject *args) { return run_scan(args, 0); }

/* hot_matches(buf, start, end, bulk): matches' result without the hot lines' matches, plus those
   lines (bytes: an array of Hot, for blocks and items) */
static PyObject *hot_matches(PyObject *self, PyObject *args) { return run_scan(args, 1); }

/* ---------------------------------------------------------------- line prefixes */

static inline int digits(const unsigned char *s, int n) {
    for (int k = 0; k < n; k++)
        if (s[k] < '0' || s[k] > '9')
            return 0;
    return 1;
}

static inline int num_at(const unsigned char *s, int n) {
    int v = 0;
    for (int k = 0; k < n; k++)
        v = v * 10 + (s[k] - '0');
    return v;
}

/* 'YYYY-mm-dd HH:MM' at s (digits checked) -> local unix seconds as time.mktime gives them, cached
   per minute as tui.log.prefix._unix does; 0 when datetime() would refuse it or mktime fails */
static struct {
    unsigned char key[16];
    double base;
    int used;
} minutes[256];

static int minute_base(const unsigned char *s, double *base) {
    unsigned h = 0;
    for (int k = 0; k < 16; k++)
        h = h * 31 + s[k];
    h &= 255;
    if (minutes[h].used && memcmp(minutes[h].key, s, 16) == 0) {
        *base = minutes[h].base;
        return 1;
    }
    int y = num_at(s, 4), mo = num_at(s + 5, 2), d = num_at(s + 8, 2), hh = num_at(s + 11, 2), mi = num_at(s + 14, 2);
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || hh > 23 || mi > 59)
        return 0;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[mo - 1] + (mo == 2 && leap))
        return 0;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = hh;
    tm.tm_min = mi;
    tm.tm_isdst = -1;
    time_t t = mktime(&tm);
    if (t == (time_t)-1)
        return 0;
    memcpy(minutes[h].key, s, 16);
    minutes[h].base = (double)t;
    minutes[h].used = 1;
    *base = (double)t;
    return 1;
}

/* 'YYYY-mm-dd HH:MM:SS,mmm' at s: its time, as tui.log.prefix._unix computes it */
static int stamp(const unsigned char *s, double *t) {
    if (!(digits(s, 4) && s[4] == '-' && digits(s + 5, 2) && s[7] == '-' && digits(s + 8, 2) && s[10] == ' ' &&
          digits(s + 11, 2) && s[13] == ':' && digits(s + 14, 2) && s[16] == ':' && digits(s + 17, 2) &&
          s[19] == ',' && digits(s + 20, 3)))
        return 0;
    double base;
    if (!minute_base(s, &base))
        return 0;
    *t = base + num_at(s + 17, 2) + num_at(s + 20, 3) / 1000.0;
    return 1;
}

/* [A-Z]{3,8} at s followed by `tail`: its length, 0 if not */
static Py_ssize_t level_at(const unsigned char *s, const unsigned char *e, const char *tail, Py_ssize_t n) {
    Py_ssize_t k = 0;
    while (k < 8 && s + k < e && s[k] >= 'A' && s[k] <= 'Z')
        k++;
    if (k < 3 || s + k + n > e || memcmp(s + k, tail, (size_t)n) != 0)
        return 0;
    return k;
}

/* A Hydra or wrapper prefix at the start of the line s..e, plain ASCII: 1 and its time, level
   (lv, nlv) and message start; 0 when tui.log.prefix.split_prefix must decide (no prefix there,
   one after a fragment, a date datetime() refuses, non-ASCII) */
static int split_plain(const unsigned char *s, const unsigned char *e, double *t, const unsigned char **lv,
                       Py_ssize_t *nlv, const unsigned char **msg) {
    if (e - s < 30)
        return 0;
    if (s[0] == '[') { /* [YYYY-mm-dd HH:MM:SS,mmm][logger][LEVEL] - */
        if (!(s[24] == ']' && s[25] == '[' && stamp(s + 1, t)))
            return 0;
        const unsigned char *g = s + 26;
        while (g < e && g - (s + 26) <= 200 && *g != ']' && *g != '[' && *g != '\n' && *g < 0x80)
            g++;
        if (g == s + 26 || g - (s + 26) > 200 || g + 1 >= e || g[0] != ']' || g[1] != '[')
            return 0;
        *lv = g + 2;
        if (!(*nlv = level_at(*lv, e, LIT("] - "))))
            return 0;
        *msg = *lv + *nlv + 4;
    } else { /* YYYY-mm-dd HH:MM:SS,mmm - logger - LEVEL - */
        if (!(s[23] == ' ' && s[24] == '-' && s[25] == ' ' && stamp(s, t)))
            return 0;
        const unsigned char *g = s + 26;
        while (g < e && *g > ' ' && *g < 0x7f)
            g++;
        if (g == s + 26 || g - (s + 26) > 200 || e - g < 3 || memcmp(g, " - ", 3) != 0)
            return 0;
        *lv = g + 3;
        if (!(*nlv = level_at(*lv, e, LIT(" - "))))
            return 0;
        *msg = *lv + *nlv + 3;
    }
    return 1;
}

/* prefix(buf, ls, le) -> (t, level, message, hydra) | None: tui.log.prefix.split_prefix of the line
   buf[ls:le] when `split_plain` can split it; None means "ask split_prefix" */
static PyObject *prefix(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t ls, le;
    if (!PyArg_ParseTuple(args, "y*nn", &view, &ls, &le))
        return NULL;
    PyObject *res = NULL;
    const unsigned char *lv, *msg;
    Py_ssize_t nlv;
    double t;
    if (ls < 0 || le > view.len || ls > le)
        goto none;
    const unsigned char *s = (const unsigned char *)view.buf + ls, *e = (const unsigned char *)view.buf + le;
    if (!split_plain(s, e, &t, &lv, &nlv, &msg))
        goto none;
    PyObject *level = nlv == 8 && memcmp(lv, "CRITICAL", 8) == 0
                          ? PyUnicode_FromStringAndSize("ERROR", 5)
                          : PyUnicode_FromStringAndSize((const char *)lv, nlv);
    PyObject *text = level ? PyUnicode_DecodeUTF8((const char *)msg, e - msg, "replace") : NULL;
    if (text != NULL)
        res = Py_BuildValue("(dNNO)", t, level, text, s[0] == '[' ? Py_True : Py_False);
    else
        Py_XDECREF(level);
    PyBuffer_Release(&view);
    return res;
none:
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------------- hot lines
 *
 * The lines a long log makes an event of every epoch, recognised here instead of by
 * tui.log.parse and folded per epoch (`blocks`): `[tag] Epoch N/M` / `Epoch N/M`, `Learning rate:`,
 * `train/total_loss:`, `val/loss:` / `[tag] Validation loss:`, `Sharpe:`, both formats' `Val metrics`
 * lines, `Checkpoint saved:`. A line is hot only when it is exactly what tui.log.parse would make
 * that event of: a plain Hydra prefix at its start whose ` - ` is the match's (`split_plain`), a
 * level that counts neither as a warning nor as an error, a message in the recogniser's exact
 * grammar with ASCII numbers that Python's float() reads as strtod does, and no Hydra WARNING
 * prefix or traceback header inside it; anything else (nan, unicode, a trailing word) stays a
 * match, which tui.log.scan parses. tests/test_scanc.py checks every hot line's event against
 * tui.log.parse's, and the folds against the plain loop's.
 */

enum { H_ES = 1, H_LR, H_TL, H_VL, H_HM, H_SH, H_CK };

struct Hot {
    Py_ssize_t ls;     /* the line's start */
    Py_ssize_t s0, s1; /* VL: the tag (s0 == s1: `val/loss:`), HM: the variant, CK: the path */
    double t;
    double v[6];       /* LR TL VL SH: v[0]; HM: ic, rank_ic, scale, mae, rmse, hit */
    int kind;
    int lv0, nlv;      /* the level: buf[ls + lv0 : ls + lv0 + nlv] */
    int a, b;          /* ES: epoch, max epochs; HM: h, the variant is z; CK: epoch (-1: none); VL: counts */
    int none;          /* HM: bit k set: v[k] is None (the original's rank_ic and hit) */
};

static size_t hot_size(void) { return sizeof(Hot); }

static inline int is_pyspace(unsigned char c) { /* str.isspace() of an ASCII character */
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

/* \S+ at q (str semantics): its end, q when empty, -1 at a non-ASCII byte (which may be unicode
   whitespace: the caller declines the line) */
static Py_ssize_t token(const unsigned char *b, Py_ssize_t q, Py_ssize_t le) {
    Py_ssize_t r = q;
    while (r < le && !is_pyspace(b[r])) {
        if (b[r] >= 0x80)
            return -1;
        r++;
    }
    return r;
}

/* tui.log.prefix.num of b[q:r] when it is a plain decimal after its rstrip(",);s%"): 1 and the
   value (strtod and float() both round correctly); 0 otherwise (nan, inf, `1_0`, empty, ...) */
static int pynum(const unsigned char *b, Py_ssize_t q, Py_ssize_t r, double *out) {
    while (r > q && (b[r - 1] == ',' || b[r - 1] == ')' || b[r - 1] == ';' || b[r - 1] == 's' || b[r - 1] == '%'))
        r--;
    Py_ssize_t n = r - q, k = 0, d = 0;
    if (n <= 0 || n > 60)
        return 0;
    const unsigned char *s = b + q;
    if (s[k] == '+' || s[k] == '-')
        k++;
    while (k < n && s[k] >= '0' && s[k] <= '9')
        k++, d++;
    if (k < n && s[k] == '.') {
        k++;
        while (k < n && s[k] >= '0' && s[k] <= '9')
            k++, d++;
    }
    if (d == 0)
        return 0;
    if (k < n && (s[k] == 'e' || s[k] == 'E')) {
        k++;
        if (k < n && (s[k] == '+' || s[k] == '-'))
            k++;
        Py_ssize_t e0 = k;
        while (k < n && s[k] >= '0' && s[k] <= '9')
            k++;
        if (k == e0)
            return 0;
    }
    if (k != n)
        return 0;
    /* Clinger's fast path: up to 15 significant digits and a power of ten up to 22 are exact
       doubles, so one IEEE multiply or divide rounds correctly, as strtod and float() do */
    uint64_t m = 0;
    int sig = 0, exp10 = 0, neg = s[0] == '-', i = s[0] == '+' || s[0] == '-', dot = 0, ok = 1;
    for (; i < n && ok; i++) {
        unsigned char c = s[i];
        if (c == '.') {
            dot = 1;
        } else if (c >= '0' && c <= '9') {
            if (m || c != '0')
                sig++;
            m = m * 10 + (unsigned)(c - '0');
            exp10 -= dot;
            ok = sig <= 15;
        } else { /* the exponent */
            int eneg = s[i + 1] == '-', x = 0;
            for (Py_ssize_t j = i + 1 + (s[i + 1] == '+' || s[i + 1] == '-'); j < n && ok; j++)
                ok = (x = x * 10 + (s[j] - '0')) <= 400;
            exp10 += eneg ? -x : x;
            break;
        }
    }
    if (ok && exp10 >= -22 && exp10 <= 22) {
        static const double p10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                     1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
        double v = (double)m;
        v = exp10 < 0 ? v / p10[-exp10] : v * p10[exp10];
        *out = neg ? -v : v;
        return 1;
    }
    char tmp[64];
    memcpy(tmp, s, (size_t)n);
    tmp[n] = 0;
    *out = strtod(tmp, NULL);
    return 1;
}

/* \d+ at q, at most 9 digits: its end and value; 0 when none or longer */
static Py_ssize_t uint_at(const unsigned char *b, Py_ssize_t q, Py_ssize_t le, int *v) {
    Py_ssize_t r = q;
    int x = 0;
    while (r < le && b[r] >= '0' && b[r] <= '9') {
        if (r - q == 9)
            return 0;
        x = x * 10 + (b[r] - '0');
        r++;
    }
    if (r == q)
        return 0;
    *v = x;
    return r;
}

static inline int at(const unsigned char *b, Py_ssize_t q, Py_ssize_t le, const char *s, Py_ssize_t n) {
    return q + n <= le && memcmp(b + q, s, (size_t)n) == 0;
}

static int only_space(const unsigned char *b, Py_ssize_t q, Py_ssize_t le) { /* \s*$ */
    while (q < le && is_pyspace(b[q]))
        q++;
    return q == le;
}

/* num(b[q:le].strip()) as the `name: X` recognisers take it */
static int stripped_num(const unsigned char *b, Py_ssize_t q, Py_ssize_t le, double *out) {
    while (q < le && is_pyspace(b[q]))
        q++;
    while (le > q && is_pyspace(b[le - 1]))
        le--;
    return pynum(b, q, le, out);
}

/* b[q:le] is ASCII and holds neither a traceback header nor a Hydra WARNING prefix (which other
   passes of tui.log.scan look for) */
static int ascii_free_text(const unsigned char *b, Py_ssize_t q, Py_ssize_t le) {
    static const char tb[] = "Traceback (most recent call last)", wn[] = "][WARNING] - ";
    for (Py_ssize_t k = q; k < le; k++) {
        unsigned char c = b[k];
        if (c >= 0x80 || (c == 'T' && at(b, k, le, tb, sizeof tb - 1)) || (c == ']' && at(b, k, le, wn, sizeof wn - 1)))
            return 0;
    }
    return 1;
}

/* `Epoch N/M\s*$` at q */
static int epoch_start(const unsigned char *b, Py_ssize_t q, Py_ssize_t le, Hot *h) {
    if (!at(b, q, le, LIT("Epoch ")))
        return 0;
    Py_ssize_t r = uint_at(b, q + 6, le, &h->a);
    if (!r || r >= le || b[r] != '/' || !(r = uint_at(b, r + 1, le, &h->b)) || !only_space(b, r, le))
        return 0;
    h->kind = H_ES;
    return 1;
}

/* the engine's and the original's `Val metrics (v) h=N: ...` exactly as written (the recognisers'
   two fullmatch templates; anything else goes to the generic key=value reading) */
static int val_metrics(const unsigned char *b, Py_ssize_t q, Py_ssize_t le, Hot *h) {
    if (!at(b, q, le, LIT("Val metrics (")) || !ascii_free_text(b, q, le))
        return 0;
    Py_ssize_t r = q + 13;
    h->s0 = r;
    while (r < le && b[r] != ')')
        r++;
    if (r >= le)
        return 0;
    h->s1 = r;
    Py_ssize_t sp = ++r;
    while (r < le && b[r] == ' ')
        r++;
    if (r == sp || !at(b, r, le, LIT("h=")) || !(r = uint_at(b, r + 2, le, &h->a)))
        return 0;
    int zs = 0, other = 0; /* variant.replace(" ", "").lower() == "z" */
    for (Py_ssize_t k = h->s0; k < h->s1; k++) {
        if (b[k] == 'z' || b[k] == 'Z')
            zs++;
        else if (b[k] != ' ')
            other++;
    }
    h->b = zs == 1 && !other;
    /* key=token fields: the engine's, then the original's; 0 marks a token only matched */
    static const char *const eng[] = {": MAE=", " RMSE=", " IC=", " RankIC=", " SCALE(yhat/y)=", " HIT="};
    static const int eng_v[] = {4, 5, 1, 2, 3, 6}, eng_n[] = {6, 6, 4, 8, 15, 5};
    static const char *const atft[] = {": MAE=", " RMSE=", " R2=", " IC=", " NAIVE_RMSE=", " SCALE(yhat/y)=", " CAL="};
    static const int atft_v[] = {4, 5, 0, 1, 0, 3, 0}, atft_n[] = {6, 6, 4, 4, 12, 15, 5};
    for (int f = 0; f < 2; f++) {
        const char *const *keys = f ? atft : eng;
        const int *slot = f ? atft_v : eng_v, *len = f ? atft_n : eng_n;
        int nk = f ? 7 : 6, ok = 1;
        Py_ssize_t p = r;
        for (int k = 0; k < nk && ok; k++) {
            Py_ssize_t n = len[k], e;
            if (!at(b, p, le, keys[k], n) || (e = token(b, p + n, le)) <= p + n)
                ok = 0;
            else if (slot[k] && !pynum(b, p + n, e, &h->v[slot[k] - 1]))
                return 0; /* a number num() reads differently (nan, inf, ...): Python's */
            else
                p = e;
        }
        if (ok && p == le) {
            h->none = f ? (1 << 1) | (1 << 5) : 0;
            h->kind = H_HM;
            return 1;
        }
    }
    return 0;
}

/* `Checkpoint saved: (.+?)(?: \(epoch=(\d+)\))?\s*$` at q */
static int checkpoint(const unsigned char *b, Py_ssize_t q, Py_ssize_t le, Hot *h) {
    if (!at(b, q, le, LIT("Checkpoint saved: ")) || !ascii_free_text(b, q, le))
        return 0;
    Py_ssize_t s = q + 18, r = le;
    while (r > s && is_pyspace(b[r - 1]))
        r--;
    if (r == s)
        return 0;
    h->s0 = s;
    h->s1 = r;
    h->a = -1;
    if (b[r - 1] == ')') { /* the lazy path stops before a ` (epoch=N)` that ends the line */
        Py_ssize_t d = r - 1;
        while (d > s && b[d - 1] >= '0' && b[d - 1] <= '9')
            d--;
        if (d < r - 1 && d - s >= 9 && memcmp(b + d - 8, " (epoch=", 8) == 0) {
            if (!uint_at(b, d, r - 1, &h->a))
                return 0; /* more than 9 digits: Python's */
            h->s1 = d - 8;
        }
    }
    h->kind = H_CK;
    return 1;
}

/* `name` then num(rest.strip()) at q, as the `name: X` recognisers read it: event `kind` */
static int named_num(const unsigned char *b, Py_ssize_t q, Py_ssize_t le, const char *name, Py_ssize_t n, int kind,
                     Hot *h) {
    if (!at(b, q, le, name, n) || !stripped_num(b, q + n, le, &h->v[0]))
        return 0;
    h->kind = kind;
    return 1;
}

/* the message at q (line end le) as a hot event: 1 and h filled, or 0 */
static int hot_message(const unsigned char *b, Py_ssize_t q, Py_ssize_t le, Hot *h) {
    Py_ssize_t r;
    switch (q < le ? b[q] : 0) {
    case '[': { /* _tagged: the tags read before `[tag] Epoch` / `[tag] Validation loss` are not hot */
        static const char *const tagged[] = {"[progress] ", "[GRAD-MONITOR] ", "[exit] ", "[error] ",
                                             "[signal] ", "[metrics] ", "[epoch-end] ", "[data-filter] "};
        for (int k = 0; k < 8; k++)
            if (at(b, q, le, tagged[k], (Py_ssize_t)strlen(tagged[k])))
                return 0;
        r = q + 1;
        while (r < le && r - q <= 20 && is_word(b[r]))
            r++; /* \w{1,20} */
        if (r == q + 1 || !at(b, r, le, LIT("] ")))
            return 0;
        if (epoch_start(b, r + 2, le, h))
            return 1;
        if (!at(b, r + 2, le, LIT("Validation loss: ")) || !ascii_free_text(b, q, le))
            return 0;
        Py_ssize_t v = r + 19, e = token(b, v, le);
        if (e <= v || !pynum(b, v, e, &h->v[0]))
            return 0;
        h->s0 = q + 1, h->s1 = r;
        h->b = r - q - 1 == 4 && memcmp(b + q + 1, "main", 4) == 0;
        h->kind = H_VL;
        return 1;
    }
    case 'E':
        return epoch_start(b, q, le, h);
    case 'S': {
        if (!at(b, q, le, LIT("Sharpe: ")))
            return 0;
        Py_ssize_t e = token(b, q + 8, le);
        if (e <= q + 8 || !only_space(b, e, le) || !pynum(b, q + 8, e, &h->v[0]))
            return 0;
        h->kind = H_SH;
        return 1;
    }
    case 'V':
        return val_metrics(b, q, le, h);
    case 't':
        return named_num(b, q, le, LIT("train/total_loss: "), H_TL, h);
    case 'v':
        if (!named_num(b, q, le, LIT("val/loss: "), H_VL, h))
            return 0;
        h->s0 = h->s1 = q; /* the source `val/loss`, which counts */
        h->b = 1;
        return 1;
    case 'L':
        return named_num(b, q, le, LIT("Learning rate: "), H_LR, h);
    case 'C':
        return checkpoint(b, q, le, h);
    default:
        return 0;
    }
}

/* the EV match at the ` - ` at p (its line ends at le) as a hot line: 1 and h filled, or 0 */
static int hot_line(const Buf *x, Py_ssize_t p, Py_ssize_t le, Hot *h) {
    const unsigned char *b = x->b, *lv, *msg;
    Py_ssize_t nlv;
    const unsigned char *nl = memrchr(b, '\n', (size_t)p);
    Py_ssize_t ls = nl ? nl - b + 1 : 0;
    double t;
    if (b[ls] != '[' || !split_plain(b + ls, b + le, &t, &lv, &nlv, &msg) || msg != b + p + 3)
        return 0;
    if ((nlv == 7 && memcmp(lv, "WARNING", 7) == 0) || (nlv == 5 && memcmp(lv, "ERROR", 5) == 0) ||
        (nlv == 8 && memcmp(lv, "CRITICAL", 8) == 0))
        return 0;
    memset(h, 0, sizeof *h);
    if (!hot_message(b, p + 3, le, h))
        return 0;
    h->ls = ls;
    h->t = t;
    h->lv0 = (int)(lv - (b + ls));
    h->nlv = (int)nlv;
    return 1;
}

/* ---------------------------------------------------------------- the fold of hot lines */

/* One epoch's hot lines (or the ones before a run's first epoch start), folded: what
   tui.state.fold._hot_run applies, the same as folding their events one by one. */
typedef struct {
    PyObject *es;                       /* (epoch, max_epochs, t) or NULL */
    double lr, tl, vl, sh, vt;
    int has;                            /* set: 1 lr, 2 tl, 4 vl, 8 sh, 16 vt */
    int flags;                          /* 1 the current record, 2 validating, 4 validated */
    int nh, hh[16], hnone[16];
    double hv[16][6];                   /* per horizon, first seen order, the last values */
    int np, pops[16];                   /* horizons whose low-variance flag a line clears */
    PyObject *cks;                      /* checkpoint paths, or NULL */
} Sub;

static PyObject *opt(int set, double v) { return set ? PyFloat_FromDouble(v) : Py_NewRef(Py_None); }

/* a tuple of n new references (stolen; NULL if any is NULL: the others are released) */
static PyObject *tuple_of(Py_ssize_t n, PyObject **items) {
    PyObject *t = NULL;
    for (Py_ssize_t k = 0; k < n; k++)
        if (items[k] == NULL)
            goto fail;
    if ((t = PyTuple_New(n)) == NULL)
        goto fail;
    for (Py_ssize_t k = 0; k < n; k++)
        PyTuple_SET_ITEM(t, k, items[k]);
    return t;
fail:
    for (Py_ssize_t k = 0; k < n; k++)
        Py_XDECREF(items[k]);
    return NULL;
}

/* the sub-block as a tuple appended to `out`, then emptied; -1 on a Python error */
static int emit(Sub *u, PyObject *out) {
    if (!u->es && !u->has && !u->flags && !u->np && !u->cks)
        return 0;
    PyObject *hs = PyTuple_New(u->nh), *ps = PyTuple_New(u->np), *t = NULL;
    int ok = hs && ps;
    for (int k = 0; ok && k < u->nh; k++) {
        PyObject *f[7] = {PyLong_FromLong(u->hh[k])};
        for (int j = 0; j < 6; j++)
            f[j + 1] = opt(!(u->hnone[k] & (1 << j)), u->hv[k][j]);
        PyObject *h = tuple_of(7, f);
        if (h)
            PyTuple_SET_ITEM(hs, k, h);
        ok = h != NULL;
    }
    for (int k = 0; ok && k < u->np; k++) {
        PyObject *h = PyLong_FromLong(u->pops[k]);
        if (h)
            PyTuple_SET_ITEM(ps, k, h);
        ok = h != NULL;
    }
    if (ok) {
        PyObject *f[10] = {u->es ? u->es : Py_NewRef(Py_None), opt(u->has & 1, u->lr), opt(u->has & 2, u->tl),
                           opt(u->has & 4, u->vl), opt(u->has & 8, u->sh), opt(u->has & 16, u->vt),
                           PyLong_FromLong(u->flags), hs, ps, u->cks ? PyList_AsTuple(u->cks) : PyTuple_New(0)};
        u->es = NULL, hs = ps = NULL;
        t = tuple_of(10, f);
    }
    Py_XDECREF(hs);
    Py_XDECREF(ps);
    Py_CLEAR(u->es);
    Py_CLEAR(u->cks);
    memset(u, 0, sizeof *u);
    if (!t || PyList_Append(out, t) < 0) {
        Py_XDECREF(t);
        return -1;
    }
    Py_DECREF(t);
    return 0;
}

/* one hot line into the sub-block (a new one at an epoch start or when one is full) */
static int fold_hot(Sub *u, const Hot *h, const unsigned char *b, PyObject *out) {
    switch (h->kind) {
    case H_ES:
        if (emit(u, out) < 0)
            return -1;
        PyObject *f[3] = {PyLong_FromLong(h->a), PyLong_FromLong(h->b), PyFloat_FromDouble(h->t)};
        return (u->es = tuple_of(3, f)) ? 0 : -1;
    case H_LR:
        u->lr = h->v[0], u->has |= 1, u->flags |= 1;
        return 0;
    case H_TL:
        u->tl = h->v[0], u->has |= 2, u->flags |= 1;
        return 0;
    case H_VL:
        if (h->b) /* `val/loss:` or `[main] Validation loss:`; the others are not the epoch's */
            u->vl = h->v[0], u->vt = h->t, u->has |= 4 | 16, u->flags |= 1 | 2;
        return 0;
    case H_SH:
        u->sh = h->v[0], u->vt = h->t, u->has |= 8 | 16, u->flags |= 1 | 2 | 4;
        return 0;
    case H_HM: {
        if (!h->b)
            return 0; /* (z, CAL), (raw): other views of the same predictions */
        int clears = !(h->none & 4) && h->v[2] >= 0.005, k = 0;
        while (k < u->nh && u->hh[k] != h->a)
            k++;
        if ((k == u->nh && k == 16) || (clears && u->np == 16)) {
            if (emit(u, out) < 0)
                return -1;
            k = 0;
        }
        if (k == u->nh)
            u->hh[u->nh++] = h->a;
        memcpy(u->hv[k], h->v, sizeof h->v);
        u->hnone[k] = h->none;
        if (clears)
            u->pops[u->np++] = h->a;
        u->vt = h->t, u->has |= 16, u->flags |= 1 | 2 | 4;
        return 0;
    }
    case H_CK: {
        PyObject *p = PyUnicode_DecodeASCII((const char *)b + h->s0, h->s1 - h->s0, NULL);
        if (!p || (!u->cks && !(u->cks = PyList_New(0))) || PyList_Append(u->cks, p) < 0) {
            Py_XDECREF(p);
            return -1;
        }
        Py_DECREF(p);
        return 0;
    }
    }
    return 0;
}

/* blocks(buf, hot, splits) -> [(first line start, [sub-block, ...]), ...]: the hot lines `hot`
   (from hot_matches) folded per run of lines that no line start in `splits` (sorted: the lines
   that make other events) comes between, and per epoch within a run */
static PyObject *blocks(PyObject *self, PyObject *args) {
    Py_buffer view, hv;
    PyObject *splits;
    if (!PyArg_ParseTuple(args, "y*y*O!", &view, &hv, &PyList_Type, &splits))
        return NULL;
    const Hot *hot = (const Hot *)hv.buf;
    Py_ssize_t n = hv.len / (Py_ssize_t)sizeof(Hot), ns = PyList_GET_SIZE(splits), j = 0;
    PyObject *out = PyList_New(0), *run = NULL;
    Sub u;
    memset(&u, 0, sizeof u);
    if (!out)
        goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        const Hot *h = &hot[i];
        int cut = 0;
        for (; j < ns; j++) {
            Py_ssize_t s = PyLong_AsSsize_t(PyList_GET_ITEM(splits, j));
            if (s == -1 && PyErr_Occurred())
                goto fail;
            if (s > h->ls)
                break;
            cut = 1;
        }
        if (run && cut) {
            if (emit(&u, run) < 0)
                goto fail;
            Py_CLEAR(run);
        }
        if (!run) {
            PyObject *r;
            if (!(run = PyList_New(0)) || !(r = Py_BuildValue("(nO)", h->ls, run)) || PyList_Append(out, r) < 0) {
                Py_XDECREF(r);
                goto fail;
            }
            Py_DECREF(r);
        }
        if (fold_hot(&u, h, (const unsigned char *)view.buf, run) < 0)
            goto fail;
    }
    if (run && emit(&u, run) < 0)
        goto fail;
    Py_XDECREF(run);
    PyBuffer_Release(&view);
    PyBuffer_Release(&hv);
    return out;
fail:
    Py_CLEAR(u.es);
    Py_CLEAR(u.cks);
    Py_XDECREF(run);
    Py_XDECREF(out);
    PyBuffer_Release(&view);
    PyBuffer_Release(&hv);
    return NULL;
}

/* items(buf, hot) -> [(line start, kind, t, level, a, b, values, text)]: the hot lines as read,
   for tests (kind: "ES" "LR" "TL" "VL" "HM" "SH" "CK"; values None where the event has None) */
static PyObject *items(PyObject *self, PyObject *args) {
    Py_buffer view, hv;
    if (!PyArg_ParseTuple(args, "y*y*", &view, &hv))
        return NULL;
    static const char *const kinds[] = {"", "ES", "LR", "TL", "VL", "HM", "SH", "CK"};
    const Hot *hot = (const Hot *)hv.buf;
    const char *b = (const char *)view.buf;
    Py_ssize_t n = hv.len / (Py_ssize_t)sizeof(Hot);
    PyObject *out = PyList_New(n);
    for (Py_ssize_t i = 0; out && i < n; i++) {
        const Hot *h = &hot[i];
        PyObject *t = Py_BuildValue("(nsdN" "ii(NNNNNN)N)", h->ls, kinds[h->kind], h->t,
                                    PyUnicode_DecodeASCII(b + h->ls + h->lv0, h->nlv, NULL), h->a, h->b,
                                    opt(!(h->none & 1), h->v[0]), opt(!(h->none & 2), h->v[1]),
                                    opt(!(h->none & 4), h->v[2]), opt(!(h->none & 8), h->v[3]),
                                    opt(!(h->none & 16), h->v[4]), opt(!(h->none & 32), h->v[5]),
                                    PyUnicode_DecodeASCII(b + h->s0, h->s1 - h->s0, NULL));
        if (!t)
            Py_CLEAR(out);
        else
            PyList_SET_ITEM(out, i, t);
    }
    PyBuffer_Release(&view);
    PyBuffer_Release(&hv);
    return out;
}

static PyMethodDef methods[] = {
    {"matches", matches, METH_VARARGS,
     "matches(buf, start, end, bulk) -> (matches, newlines, warning_prefixes, w_matches, last_w)"},
    {"prefix", prefix, METH_VARARGS, "prefix(buf, ls, le) -> (t, level, message, hydra) | None"},
    {"hot_matches", hot_matches, METH_VARARGS,
     "hot_matches(buf, start, end, bulk) -> (matches, newlines, warning_prefixes, w_matches, last_w, hot)"},
    {"blocks", blocks, METH_VARARGS, "blocks(buf, hot, splits) -> [(first line start, [sub-block, ...])]"},
    {"items", items, METH_VARARGS, "items(buf, hot) -> [(line start, kind, t, level, a, b, values, text)]"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "tui.log._scanc",
                                    "The attach prefilter of tui.log.scan, compiled.", -1, methods};

PyMODINIT_FUNC PyInit__scanc(void) { return PyModule_Create(&module); }
