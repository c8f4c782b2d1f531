# Installation layout and Debian packages (CPack), included once from the end of the
# top-level CMakeLists.txt. docs/OPERATIONS.md ("Installing as a service") describes the
# result; tests/package/package_test.sh installs the packages and starts their units.
#
#   cmake --install build [--prefix /usr]   # CMAKE_INSTALL_PREFIX, /usr/local by default
#   (cd build && cpack -G DEB)              # build/packages/storeplane-{server,agent,cli}_*.deb
#
# The packages always install into /usr, with their configuration in /etc. The systemd
# units and the configuration directory are rendered at install time for the prefix
# installed to (packaging/install-files.cmake): /etc for /usr, <prefix>/etc otherwise.

include(GNUInstallDirs)
set(STOREPLANE_PKG_OUT "${PROJECT_BINARY_DIR}/packaging")

# --- binaries: the CLI for everyone in bin, the two daemons in sbin ---------------------
install(TARGETS storeplaned RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR} COMPONENT server)
install(TARGETS shop-agent RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR} COMPONENT agent)
install(TARGETS storeplane-cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT cli)

# --- systemd units and configuration (conffiles in the packages), for the install prefix ---
install(CODE "
  set(SP_SOURCE_DIR \"${PROJECT_SOURCE_DIR}\")
  set(SP_BINARY_DIR \"${PROJECT_BINARY_DIR}\")
  set(SP_UNIT storeplaned)
  set(SP_CONFIG_DIR storeplane)
  set(SP_CONFIG_FILES \"${PROJECT_SOURCE_DIR}/packaging/storeplaned.yaml;${PROJECT_SOURCE_DIR}/config/policy.yaml\")
  set(SP_CONFIG_RENAME \"\")
  include(\"${PROJECT_SOURCE_DIR}/packaging/install-files.cmake\")" COMPONENT server)
install(CODE "
  set(SP_SOURCE_DIR \"${PROJECT_SOURCE_DIR}\")
  set(SP_BINARY_DIR \"${PROJECT_BINARY_DIR}\")
  set(SP_UNIT shop-agent)
  set(SP_CONFIG_DIR shop-agent)
  set(SP_CONFIG_FILES \"${PROJECT_SOURCE_DIR}/config/shop-agent.example.yaml\")
  set(SP_CONFIG_RENAME agent.yaml)
  include(\"${PROJECT_SOURCE_DIR}/packaging/install-files.cmake\")" COMPONENT agent)

# --- examples and documents -----------------------------------------------------------------
set(STOREPLANE_DOCDIR_SERVER "${CMAKE_INSTALL_DATADIR}/doc/storeplane-server")
set(STOREPLANE_DOCDIR_AGENT "${CMAKE_INSTALL_DATADIR}/doc/storeplane-agent")
install(FILES ${PROJECT_SOURCE_DIR}/packaging/storeplaned.yaml ${PROJECT_SOURCE_DIR}/config/policy.yaml
        DESTINATION ${STOREPLANE_DOCDIR_SERVER}/examples COMPONENT server)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/docs/OPERATIONS.md
              ${PROJECT_SOURCE_DIR}/docs/CONTROL_PLANE_AUTHORITY.md ${PROJECT_SOURCE_DIR}/docs/CICD.md
        DESTINATION ${STOREPLANE_DOCDIR_SERVER} COMPONENT server)
install(FILES ${PROJECT_SOURCE_DIR}/config/shop-agent.example.yaml
        DESTINATION ${STOREPLANE_DOCDIR_AGENT}/examples COMPONENT agent)
install(FILES ${PROJECT_SOURCE_DIR}/docs/OPERATIONS.md DESTINATION ${STOREPLANE_DOCDIR_AGENT} COMPONENT agent)

# --- bash completion, generated from the CLI itself (`storeplane completion bash`) --------
add_custom_command(
  OUTPUT ${PROJECT_BINARY_DIR}/completion/storeplane
  COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/completion
  # (a sanitized build runs its CLI here too: leak reports belong to the CLI tests, not the build)
  COMMAND ${CMAKE_COMMAND} -E env ASAN_OPTIONS=detect_leaks=0
          $<TARGET_FILE:storeplane-cli> completion bash > ${PROJECT_BINARY_DIR}/completion/storeplane
  DEPENDS storeplane-cli
  COMMENT "Generating the bash completion of storeplane"
  VERBATIM)
add_custom_target(storeplane-completion ALL DEPENDS ${PROJECT_BINARY_DIR}/completion/storeplane)
install(FILES ${PROJECT_BINARY_DIR}/completion/storeplane
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions COMPONENT cli)

# --- Debian packages ------------------------------------------------------------------------
# Three packages, because the three programs run on three kinds of machine: the server on
# the platform, the agent on every store host, the CLI on operators' machines.
foreach(component server agent)
  foreach(script postinst prerm postrm)
    configure_file(${PROJECT_SOURCE_DIR}/packaging/debian/${component}/${script}
                   ${STOREPLANE_PKG_OUT}/debian/${component}/${script} COPYONLY)
  endforeach()
endforeach()
file(WRITE ${STOREPLANE_PKG_OUT}/debian/server/conffiles "/etc/storeplane/storeplaned.yaml\n/etc/storeplane/policy.yaml\n")
file(WRITE ${STOREPLANE_PKG_OUT}/debian/agent/conffiles "/etc/shop-agent/agent.yaml\n")

set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "storeplane")
set(CPACK_PACKAGE_VENDOR "storeplane")
set(CPACK_PACKAGE_CONTACT "storeplane maintainers <storeplane@example.com>")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_HOMEPAGE_URL "https://storeplane.example.com")
set(CPACK_OUTPUT_FILE_PREFIX "${PROJECT_BINARY_DIR}/packages")  # cpack -D CPACK_OUTPUT_FILE_PREFIX=DIR
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_INSTALL_PREFIX "/usr")  # the prefix with CPACK_SET_DESTDIR
# Install with DESTDIR: CMAKE_INSTALL_PREFIX is then /usr at install time, so that the
# units and /etc are rendered for the package (and /etc lands in the package, not here).
set(CPACK_SET_DESTDIR ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_COMPONENTS_ALL server agent cli)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # library dependencies from dpkg-shlibdeps
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_SERVER_PACKAGE_NAME "storeplane-server")
set(CPACK_DEBIAN_SERVER_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_SERVER_PACKAGE_RECOMMENDS "storeplane-cli")
set(CPACK_DEBIAN_SERVER_DESCRIPTION
    "storeplane control plane server (storeplaned)\nThe registry, authority, audit, operator API and agent channel of a Magento\nhosting platform, with its hardened systemd unit and configuration.")
set(CPACK_DEBIAN_SERVER_PACKAGE_CONTROL_EXTRA
    "${STOREPLANE_PKG_OUT}/debian/server/conffiles;${STOREPLANE_PKG_OUT}/debian/server/postinst;${STOREPLANE_PKG_OUT}/debian/server/prerm;${STOREPLANE_PKG_OUT}/debian/server/postrm")

set(CPACK_DEBIAN_AGENT_PACKAGE_NAME "storeplane-agent")
set(CPACK_DEBIAN_AGENT_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_AGENT_DESCRIPTION
    "storeplane shop agent (shop-agent)\nRuns beside one Magento store, dials out to storeplaned and runs its\nallow-listed operations without a shell. With its hardened systemd unit.")
set(CPACK_DEBIAN_AGENT_PACKAGE_CONTROL_EXTRA
    "${STOREPLANE_PKG_OUT}/debian/agent/conffiles;${STOREPLANE_PKG_OUT}/debian/agent/postinst;${STOREPLANE_PKG_OUT}/debian/agent/prerm;${STOREPLANE_PKG_OUT}/debian/agent/postrm")

set(CPACK_DEBIAN_CLI_PACKAGE_NAME "storeplane-cli")
set(CPACK_DEBIAN_CLI_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_CLI_DESCRIPTION
    "storeplane operator CLI (storeplane)\nA client of the storeplane operator API, with bash completion.")

include(CPack)
