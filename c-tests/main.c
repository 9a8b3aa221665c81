/* The C test runner: every suite, then the closing line `N passed, M failed`. */
#include "harness.h"

int main(void) {
    shim_init();
    suite_context();
    suite_var();
    suite_token();
    suite_object();
    suite_errors();
    suite_values();
    suite_lifetime();
    suite_scale();
    suite_library_only();
    suite_hostile();
    suite_reentry();
    suite_threads();
    suite_deep();
    suite_watchers();
    suite_extensions();
    return h_summary();
}
