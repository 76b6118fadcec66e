// The one main() every doctest binary links; keeping it here compiles doctest's runner once.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
