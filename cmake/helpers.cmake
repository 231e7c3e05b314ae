# cadre_module(NAME deps...): a static library from NAME/*.c with PUBLIC deps.
function(cadre_module name)
  file(GLOB srcs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/${name}/*.c)
  if(NOT srcs)
    set(srcs ${PROJECT_SOURCE_DIR}/cmake/empty.c) # a module not written yet
  endif()
  add_library(cd_${name} STATIC ${srcs})
  if(ARGN)
    target_link_libraries(cd_${name} PUBLIC ${ARGN})
  endif()
endfunction()

# cadre_test(NAME SOURCE [MORE_SOURCES...] LIBS libs... [LABELS l] [TIMEOUT s]):
# a test program run by ctest.
function(cadre_test name src)
  cmake_parse_arguments(T "" "TIMEOUT" "LIBS;LABELS" ${ARGN})
  add_executable(${name} ${src} ${T_UNPARSED_ARGUMENTS}
                 ${PROJECT_SOURCE_DIR}/tests/lib/tap.c)
  target_link_libraries(${name} PRIVATE ${T_LIBS})
  # Plugins loaded by tests resolve cadre_task_* from the test program.
  set_target_properties(${name} PROPERTIES ENABLE_EXPORTS ON)
  add_test(NAME ${name} COMMAND ${name})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "CADRE_BIN=$<TARGET_FILE:cadre_cli>;CADRE_DEMO_PLUGIN=$<TARGET_FILE:cadre_demo>;CADRE_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
  if(T_LABELS)
    set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}")
  endif()
endfunction()
