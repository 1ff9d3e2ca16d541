/*
 * dashboard.c: the web dashboard (GET /), three static files compiled into the binary from
 * src/admin/dashboard/ (index.html, dashboard.js, dashboard.css: plain HTML, CSS and
 * JavaScript, no build step, nothing fetched from elsewhere). They are taken in by the
 * assembler (.incbin), so the files stay readable and editable as they are; the Makefile
 * rebuilds this object when one of them changes. The page itself only calls the admin API
 * with the master key the user types in.
 */
#include <string.h>

#include "admin/admin.h"

/* Each asset: a start label, the bytes, an end label; read-only data. */
#define AR_ASSET(sym, file)                                                                        \
    __asm__(".section .rodata\n"                                                                   \
            ".balign 16\n"                                                                         \
            ".type " #sym ", @object\n" #sym ":\n"                                                 \
            ".incbin \"" file "\"\n"                                                               \
            ".type " #sym "_end, @object\n" #sym "_end:\n"                                         \
            ".byte 0\n"                                                                            \
            ".previous\n");                                                                        \
    extern const char sym[];                                                                       \
    extern const char sym##_end[]

AR_ASSET(ar_dash_html, "src/admin/dashboard/index.html");
AR_ASSET(ar_dash_js, "src/admin/dashboard/dashboard.js");
AR_ASSET(ar_dash_css, "src/admin/dashboard/dashboard.css");

bool ar_admin_dashboard_asset(ar_span_t path, ar_admin_asset_t *out)
{
    static const char *const paths[3] = {"/", "/dashboard.js", "/dashboard.css"};
    static const char *const types[3] = {
        "text/html; charset=utf-8", "text/javascript; charset=utf-8", "text/css; charset=utf-8"};
    const char *starts[3] = {ar_dash_html, ar_dash_js, ar_dash_css};
    const char *ends[3] = {ar_dash_html_end, ar_dash_js_end, ar_dash_css_end};
    for (size_t i = 0; i < 3; i++) {
        if (!ar_span_eq(path, ar_span_cstr(paths[i])))
            continue;
        *out = (ar_admin_asset_t){paths[i], types[i],
                                  ar_span(starts[i], (size_t)(ends[i] - starts[i]))};
        return true;
    }
    return false;
}
