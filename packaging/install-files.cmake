# Runs at install time (cmake --install, cpack), from the install rules of packaging.cmake:
# renders one systemd unit for the prefix actually installed to, installs it, and installs
# configuration files under the matching sysconfdir: /etc for the prefix /usr (the
# packages), <prefix>/etc otherwise. Inputs: SP_SOURCE_DIR, SP_BINARY_DIR, SP_UNIT,
# SP_CONFIG_DIR (a directory name under sysconfdir), SP_CONFIG_FILES (source paths),
# SP_CONFIG_RENAME (optional: the name of the single config file).
set(prefix "${CMAKE_INSTALL_PREFIX}")
if(prefix STREQUAL "/usr")
  set(sysconfdir "/etc")
else()
  set(sysconfdir "${prefix}/etc")
endif()
set(STOREPLANE_SBINDIR "${prefix}/sbin")
set(STOREPLANE_SYSCONFDIR "${sysconfdir}")
set(STOREPLANE_DOCDIR_SERVER "${prefix}/share/doc/storeplane-server")
set(STOREPLANE_DOCDIR_AGENT "${prefix}/share/doc/storeplane-agent")
set(rendered "${SP_BINARY_DIR}/packaging/${SP_UNIT}.service")
configure_file("${SP_SOURCE_DIR}/packaging/systemd/${SP_UNIT}.service.in" "${rendered}" @ONLY)
file(INSTALL DESTINATION "${prefix}/lib/systemd/system" TYPE FILE FILES "${rendered}")
if(SP_CONFIG_RENAME)
  file(INSTALL DESTINATION "${sysconfdir}/${SP_CONFIG_DIR}" TYPE FILE RENAME "${SP_CONFIG_RENAME}"
       FILES ${SP_CONFIG_FILES})
else()
  file(INSTALL DESTINATION "${sysconfdir}/${SP_CONFIG_DIR}" TYPE FILE FILES ${SP_CONFIG_FILES})
endif()
