/* Runs a JavaScript function over every line of an NDJSON file in the plugin's
   QuickJS (guest-sdk/vendor), natively or as WASI, and times it; run.sh builds
   it both ways and runs it. No sandpipe code: the engine alone, with its own
   JSON.parse and JSON.stringify.

   usage: harness SCRIPT.js EVENTS.ndjson FUNCTION ROUNDS
   The lines are made JS strings before the clock starts; each round calls
   FUNCTION(line) on every line. Prints the output bytes of the last round and
   the median round's microseconds per event, with the fastest and slowest. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "quickjs.h"

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(1); }
    fseek(f, 0, SEEK_END); long n = ftell(f); fseek(f, 0, SEEK_SET);
    char *buf = malloc(n + 1);
    if (fread(buf, 1, n, f) != (size_t)n) { perror(path); exit(1); }
    buf[n] = 0; fclose(f); *len = n; return buf;
}

static double now_us(void) {
    struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: harness SCRIPT EVENTS FUNCTION ROUNDS\n"); return 2; }
    size_t slen, elen;
    char *script = slurp(argv[1], &slen), *events = slurp(argv[2], &elen);
    int rounds = atoi(argv[4]);
    JSRuntime *rt = JS_NewRuntime();
    JSContext *ctx = JS_NewContext(rt);
    JSValue r = JS_Eval(ctx, script, slen, argv[1], JS_EVAL_TYPE_GLOBAL);
    if (JS_IsException(r)) { fprintf(stderr, "script failed\n"); return 1; }
    JS_FreeValue(ctx, r);
    JSValue global = JS_GetGlobalObject(ctx);
    JSValue fn = JS_GetPropertyStr(ctx, global, argv[3]);
    /* Lines as JS strings, made once, outside the timed loop. */
    int count = 0;
    for (size_t i = 0; i < elen; i++) if (events[i] == '\n') count++;
    JSValue *lines = malloc(sizeof(JSValue) * count);
    char *p = events;
    for (int i = 0; i < count; i++) {
        char *nl = strchr(p, '\n');
        lines[i] = JS_NewStringLen(ctx, p, nl - p);
        p = nl + 1;
    }
    double *times = malloc(sizeof(double) * rounds);
    size_t bytes = 0;
    for (int round = 0; round < rounds; round++) {
        bytes = 0;
        double start = now_us();
        for (int i = 0; i < count; i++) {
            JSValue out = JS_Call(ctx, fn, JS_UNDEFINED, 1, &lines[i]);
            if (JS_IsException(out)) { fprintf(stderr, "call failed at %d\n", i); return 1; }
            if (JS_IsString(out)) {
                size_t len; const char *s = JS_ToCStringLen(ctx, &len, out);
                bytes += len; JS_FreeCString(ctx, s);
            }
            JS_FreeValue(ctx, out);
        }
        times[round] = (now_us() - start) / count;
    }
    qsort(times, rounds, sizeof(double), cmp);
    printf("%d rounds, %d events, %zu bytes out, %.2f us/event (min %.2f, max %.2f)\n",
           rounds, count, bytes, times[rounds / 2], times[0], times[rounds - 1]);
    return 0;
}
