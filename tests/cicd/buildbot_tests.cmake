# Read by ctest after gtest_discover_tests' own list (see CMakeLists.txt): the properties of
# the tests that run a real Buildbot.
foreach(test_name IN LISTS cicd_tests_TESTS)
  if(test_name MATCHES "^BuildbotRealTest\\.")
    set_tests_properties("${test_name}" PROPERTIES TIMEOUT 60 LABELS buildbot)
  endif()
endforeach()
