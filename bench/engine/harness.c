/* Runs a JavaScript function over every line of an NDJSON file in the plugin's
   QuickJS (guest-sdk/vendor), natively or as WASI, and times it; run.sh builds
   it both ways and runs it. No sandpipe code: the engine alone, with its own
   JSON.parse and JSON.stringify.

   usage: harness SCRIPT.js EVENTS.ndjson FUNCTION ROUNDS
   The lines are made JS strings before the clock starts. One untimed round
   warms up; then each of ROUNDS rounds calls FUNCTION(line) on every line,
   timed. A last untimed round hashes what the calls returned (FNV-1a over
   their UTF-8, one newline after each; null as "null"), so runs can be
   compared. Prints that hash, the output bytes, and the median round's
   microseconds per event with the fastest and slowest. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "quickjs.h"

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(1); }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(n + 1);
    if (fread(buf, 1, n, f) != (size_t)n) { perror(path); exit(1); }
    buf[n] = 0;
    fclose(f);
    *len = n;
    return buf;
}

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Prints the pending exception and exits. */
static void fail(JSContext *ctx, const char *what) {
    JSValue exception = JS_GetException(ctx);
    const char *message = JS_ToCString(ctx, exception);
    fprintf(stderr, "%s: %s\n", what, message ? message : "(no message)");
    exit(1);
}

static uint32_t fnv(uint32_t hash, const char *bytes, size_t len) {
    for (size_t i = 0; i < len; i++) hash = (hash ^ (uint8_t)bytes[i]) * 16777619u;
    return hash;
}

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: harness SCRIPT EVENTS FUNCTION ROUNDS\n"); return 2; }
    int rounds = atoi(argv[4]);
    if (rounds < 1) { fprintf(stderr, "ROUNDS must be at least 1\n"); return 2; }
    size_t slen, elen;
    char *script = slurp(argv[1], &slen), *events = slurp(argv[2], &elen);
    JSRuntime *rt = JS_NewRuntime();
    JSContext *ctx = JS_NewContext(rt);
    JSValue r = JS_Eval(ctx, script, slen, argv[1], JS_EVAL_TYPE_GLOBAL);
    if (JS_IsException(r)) fail(ctx, argv[1]);
    JS_FreeValue(ctx, r);
    JSValue global = JS_GetGlobalObject(ctx);
    JSValue fn = JS_GetPropertyStr(ctx, global, argv[3]);
    if (!JS_IsFunction(ctx, fn)) { fprintf(stderr, "%s is not a function\n", argv[3]); return 2; }
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
    for (int round = -1; round < rounds; round++) {
        double start = now_us();
        for (int i = 0; i < count; i++) {
            JSValue out = JS_Call(ctx, fn, JS_UNDEFINED, 1, &lines[i]);
            if (JS_IsException(out)) fail(ctx, "call");
            JS_FreeValue(ctx, out);
        }
        if (round >= 0) times[round] = (now_us() - start) / count;
    }
    uint32_t hash = 2166136261u;
    size_t bytes = 0;
    for (int i = 0; i < count; i++) {
        JSValue out = JS_Call(ctx, fn, JS_UNDEFINED, 1, &lines[i]);
        if (JS_IsException(out)) fail(ctx, "call");
        size_t len = 4;
        const char *s = JS_IsString(out) ? JS_ToCStringLen(ctx, &len, out) : NULL;
        if (JS_IsString(out) && !s) fail(ctx, "result");
        hash = fnv(hash, s ? s : "null", len);
        hash = fnv(hash, "\n", 1);
        bytes += s ? len : 0;
        if (s) JS_FreeCString(ctx, s);
        JS_FreeValue(ctx, out);
    }
    qsort(times, rounds, sizeof(double), cmp);
    printf("output %08x (%zu bytes), %.2f us/event (%d rounds: %.2f-%.2f)\n", hash, bytes,
           times[rounds / 2], rounds, times[0], times[rounds - 1]);
    for (int i = 0; i < count; i++) JS_FreeValue(ctx, lines[i]);
    JS_FreeValue(ctx, fn);
    JS_FreeValue(ctx, global);
    JS_FreeContext(ctx);
    JS_FreeRuntime(rt);
    return 0;
}
