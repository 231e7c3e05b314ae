# Third-party libraries, all from Debian packages (scripts/deps.sh installs them).
find_package(PkgConfig REQUIRED)
pkg_check_modules(sodium REQUIRED IMPORTED_TARGET libsodium)
pkg_check_modules(lmdb REQUIRED IMPORTED_TARGET lmdb)
pkg_check_modules(libuv REQUIRED IMPORTED_TARGET libuv)
pkg_check_modules(protobufc REQUIRED IMPORTED_TARGET libprotobuf-c)
pkg_check_modules(inih REQUIRED IMPORTED_TARGET inih)

# Debian's libnng-dev 1.5.2 ships no pkg-config file.
find_library(NNG_LIBRARY nng REQUIRED)
find_path(NNG_INCLUDE_DIR nng/nng.h REQUIRED)
add_library(nng::nng UNKNOWN IMPORTED)
set_target_properties(nng::nng PROPERTIES IMPORTED_LOCATION ${NNG_LIBRARY}
                      INTERFACE_INCLUDE_DIRECTORIES ${NNG_INCLUDE_DIR})
find_package(Threads REQUIRED)
target_link_libraries(nng::nng INTERFACE Threads::Threads)

find_program(PROTOC_C protoc-c REQUIRED)
