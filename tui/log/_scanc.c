/* The attach prefilter of tui.log.scan, compiled: one pass over a segment's bytes.
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
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include <time.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

enum { CONT = 0, GS = 1, LOWV = 2, EV = 3 };

typedef struct {
    const unsigned char *b; /* the buffer */
    Py_ssize_t end;         /* the searched string's end */
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
        Py_ssize_t r = q + 1, k = 0; /* \w{1,20}+ : possessive */
        while (k < 20 && r + k < x->end && is_word(x->b[r + k]))
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

typedef struct {
    PyObject *out;                            /* [(code, start, end)] */
    Py_ssize_t start, w_total, w_matches, last_w;
    Py_ssize_t resume;                        /* the search goes on from here (after the last match) */
    int bulk;
} Scan;

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

static PyObject *matches(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t start, end;
    int bulk;
    if (!PyArg_ParseTuple(args, "y*nnp", &view, &start, &end, &bulk))
        return NULL;
    if (start < 0)
        start = 0;
    if (end > view.len)
        end = view.len;
    Scan st = {PyList_New(0), start, 0, 0, -1, start, bulk};
    if (st.out == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    Buf x = {(const unsigned char *)view.buf, end};
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
    return Py_BuildValue("(Nnnnn)", st.out, newlines, st.w_total, st.w_matches, st.last_w);
fail:
    Py_DECREF(st.out);
    PyBuffer_Release(&view);
    return NULL;
}

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

/* prefix(buf, ls, le) -> (t, level, message, hydra) | None: tui.log.prefix.split_prefix of the line
   buf[ls:le] when a Hydra or wrapper prefix starts it and is plain ASCII; None means "ask
   split_prefix" (no prefix there, one after a fragment, a date datetime() refuses, non-ASCII) */
static PyObject *prefix(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t ls, le;
    if (!PyArg_ParseTuple(args, "y*nn", &view, &ls, &le))
        return NULL;
    PyObject *res = NULL;
    if (ls < 0 || le > view.len || le - ls < 30)
        goto none;
    const unsigned char *s = (const unsigned char *)view.buf + ls, *e = (const unsigned char *)view.buf + le;
    const unsigned char *lv, *msg;
    Py_ssize_t nlv;
    double t;
    int hydra = s[0] == '[';
    if (hydra) { /* [YYYY-mm-dd HH:MM:SS,mmm][logger][LEVEL] - */
        if (!(s[24] == ']' && s[25] == '[' && stamp(s + 1, &t)))
            goto none;
        const unsigned char *g = s + 26;
        while (g < e && g - (s + 26) <= 200 && *g != ']' && *g != '[' && *g != '\n' && *g < 0x80)
            g++;
        if (g == s + 26 || g - (s + 26) > 200 || g + 1 >= e || g[0] != ']' || g[1] != '[')
            goto none;
        lv = g + 2;
        if (!(nlv = level_at(lv, e, LIT("] - "))))
            goto none;
        msg = lv + nlv + 4;
    } else { /* YYYY-mm-dd HH:MM:SS,mmm - logger - LEVEL - */
        if (!(s[23] == ' ' && s[24] == '-' && s[25] == ' ' && stamp(s, &t)))
            goto none;
        const unsigned char *g = s + 26;
        while (g < e && *g > ' ' && *g < 0x7f)
            g++;
        if (g == s + 26 || g - (s + 26) > 200 || e - g < 3 || memcmp(g, " - ", 3) != 0)
            goto none;
        lv = g + 3;
        if (!(nlv = level_at(lv, e, LIT(" - "))))
            goto none;
        msg = lv + nlv + 3;
    }
    PyObject *level = nlv == 8 && memcmp(lv, "CRITICAL", 8) == 0
                          ? PyUnicode_FromStringAndSize("ERROR", 5)
                          : PyUnicode_FromStringAndSize((const char *)lv, nlv);
    PyObject *text = level ? PyUnicode_DecodeUTF8((const char *)msg, e - msg, "replace") : NULL;
    if (text != NULL)
        res = Py_BuildValue("(dNNO)", t, level, text, hydra ? Py_True : Py_False);
    else
        Py_XDECREF(level);
    PyBuffer_Release(&view);
    return res;
none:
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"matches", matches, METH_VARARGS,
     "matches(buf, start, end, bulk) -> (matches, newlines, warning_prefixes, w_matches, last_w)"},
    {"prefix", prefix, METH_VARARGS, "prefix(buf, ls, le) -> (t, level, message, hydra) | None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "tui.log._scanc",
                                    "The attach prefilter of tui.log.scan, compiled.", -1, methods};

PyMODINIT_FUNC PyInit__scanc(void) { return PyModule_Create(&module); }
