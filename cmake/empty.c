/* libcadre is built from its module archives; this file only gives CMake a
 * source. */
