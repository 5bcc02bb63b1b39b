#include <stdio.h>
#include <stdlib.h>

#define BUF_SIZE 64

/* A growable byte buffer. */
struct buffer {
    char *data;
    size_t len;
};

typedef struct {
    int x, y;
} point_t;

enum color { RED, GREEN };

static int counter = 0;

/* Creates an empty buffer. */
struct buffer *buffer_new(void)
{
    struct buffer *b = malloc(sizeof *b);
    b->data = NULL;
    b->len = 0;
    return b;
}

void buffer_free(struct buffer *b)
{
    free(b->data);
    free(b);
}

int main(int argc, char **argv)
{
    struct buffer *b = buffer_new();
    printf("%zu\n", b->len);
    buffer_free(b);
    return 0;
}
