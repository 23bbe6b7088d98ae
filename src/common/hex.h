/* Hexadecimal digits: one shared decoder for %-escapes, DSNs and key files. */
#ifndef ASYNCD_HEX_H
#define ASYNCD_HEX_H

/* The value 0..15 of a hex digit (either case), or -1 for any other character. */
static inline int hex_digit_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
