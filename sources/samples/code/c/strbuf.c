#include <stdlib.h>
#include <string.h>

/* A growable byte buffer: append in amortised constant time, always NUL-terminated. */
struct strbuf {
    char *data;
    size_t len;
    size_t cap;
};

int strbuf_append(struct strbuf *sb, const char *text, size_t n) {
    if (sb->len + n + 1 > sb->cap) {
        size_t cap = sb->cap ? sb->cap : 16;
        while (cap < sb->len + n + 1) {
            cap *= 2;
        }
        char *grown = realloc(sb->data, cap);
        if (grown == NULL) {
            return -1;
        }
        sb->data = grown;
        sb->cap = cap;
    }
    memcpy(sb->data + sb->len, text, n);
    sb->len += n;
    sb->data[sb->len] = '\0';
    return 0;
}

void strbuf_release(struct strbuf *sb) {
    free(sb->data);
    sb->data = NULL;
    sb->len = sb->cap = 0;
}
