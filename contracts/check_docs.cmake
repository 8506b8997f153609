# Fails when the committed catalog differs from the one the build generated.
#   cmake -DGENERATED=<build>/contracts/contracts.md -DCOMMITTED=<src>/docs/contracts.md -P check_docs.cmake
if(NOT EXISTS "${GENERATED}")
  message(FATAL_ERROR "${GENERATED} is missing: build first")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files "${GENERATED}" "${COMMITTED}"
                RESULT_VARIABLE differ)
if(differ)
  message(FATAL_ERROR "${COMMITTED} is out of date with contracts/. Refresh it with\n"
                      "  cmake --build <build dir> --target contracts-update-docs\n"
                      "and commit it.")
endif()
