# unit.code_style: every C file of the tree is as .clang-format writes it.
#   cmake -DSOURCE_DIR=<repo> -DCLANG_FORMAT=<clang-format> -P tests/code_style.cmake
file(GLOB_RECURSE sources LIST_DIRECTORIES false
  ${SOURCE_DIR}/include/*.[ch] ${SOURCE_DIR}/runtime/*.[ch] ${SOURCE_DIR}/plugins/*.[ch]
  ${SOURCE_DIR}/contracts/*.[ch] ${SOURCE_DIR}/tests/*.[ch] ${SOURCE_DIR}/docs/*.[ch])
list(LENGTH sources n)
if(n LESS 100)
  message(FATAL_ERROR "found only ${n} C files under ${SOURCE_DIR}")
endif()
execute_process(COMMAND ${CLANG_FORMAT} --style=file --dry-run --Werror ${sources}
  RESULT_VARIABLE rc ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${out}\nnot formatted as .clang-format says; run: "
    "git ls-files '*.c' '*.h' | xargs clang-format -i")
endif()
