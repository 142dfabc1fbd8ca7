# nibble_add_test(NAME name SOURCES a.cc ... LIBS lib ... [LABELS l ...])
# One GoogleTest executable; each test case becomes a ctest test (discovered when ctest runs, so building
# never needs a GPU or ../shared). Tests find ../shared through NIBBLE_SHARED (environment), falling back
# to the folder beside the source tree, and skip with a message where it is absent.
function(nibble_add_test)
  cmake_parse_arguments(ARG "" "NAME" "SOURCES;LIBS;LABELS" ${ARGN})
  if(NOT NIBBLE_TESTS)
    return()
  endif()
  add_executable(${ARG_NAME} ${ARG_SOURCES})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_LIBS} nibble_test_support GTest::gmock GTest::gtest_main)
  set(properties TIMEOUT 900)
  if(ARG_LABELS)
    list(APPEND properties LABELS "${ARG_LABELS}")
  endif()
  gtest_discover_tests(${ARG_NAME} DISCOVERY_MODE PRE_TEST DISCOVERY_TIMEOUT 60 PROPERTIES ${properties})
endfunction()
