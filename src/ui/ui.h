/* The web console (docs/console.md): its HTML, CSS and JS, built into the binary from ui/ by
 * scripts/embed_assets.sh, served at /ui/ on the admin listener. The assets hold no data, so
 * they need no token; the page's data calls go to the admin API with the user's bearer token. */
#ifndef ASYNCD_UI_H
#define ASYNCD_UI_H

#include <stdbool.h>
#include <stddef.h>

#include "http/http.h"

struct ui_asset {
    const char *name; /* base name in ui/, e.g. "app.js"; NULL ends the table */
    const unsigned char *data;
    size_t len;
};

/* Every file of ui/, from the generated ui_assets.c. */
extern const struct ui_asset ui_assets[];

/* Answers the console's paths: /ui (a redirect to /ui/), /ui/ (index.html) and /ui/NAME, with
 * the security headers; 404 for an unknown name, 405 for a method other than GET or HEAD.
 * Returns false, leaving out alone, for every other path. */
bool ui_serve(const struct http_request *req, struct http_response *out);

#endif
