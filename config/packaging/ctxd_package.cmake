# Installed files besides the binaries and the SDK, and the Debian packages (CPack's DEB
# generator, `cpack -G DEB` in a Release build tree; docs/operations.md, "Packages"):
#   ctxd      component runtime: the host, the plugins, the systemd unit, the example
#             configuration under /etc/ctxd (conffiles)
#   ctxd-dev  component dev: the plugin SDK (headers, pkg-config, CMake package)

# The configuration folder: /etc/ctxd for the prefix /usr (GNUInstallDirs), else
# <prefix>/etc/ctxd.
set(CTXD_INSTALL_FULL_CONFDIR ${CMAKE_INSTALL_FULL_SYSCONFDIR}/ctxd)
set(CTXD_SYSTEMD_UNIT_DIR lib/systemd/system CACHE STRING
  "where the systemd unit is installed, relative to the install prefix")

configure_file(${PROJECT_SOURCE_DIR}/config/systemd/ctxd@.service.in
  ${PROJECT_BINARY_DIR}/systemd/ctxd@.service @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/systemd/ctxd@.service DESTINATION ${CTXD_SYSTEMD_UNIT_DIR}
  COMPONENT runtime)
install(FILES ${PROJECT_SOURCE_DIR}/config/packaging/example.json DESTINATION ${CTXD_INSTALL_FULL_CONFDIR}
  COMPONENT runtime)

set(CPACK_PACKAGE_NAME ctxd)
set(CPACK_PACKAGE_VENDOR ctxd)
set(CPACK_PACKAGE_CONTACT "ctxd maintainers <ctxd@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
# the absolute paths configured in (the unit's ExecStart, /etc/ctxd) hold in the package only
# when it installs where the tree was configured for: -DCMAKE_INSTALL_PREFIX=/usr
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_COMPONENTS_ALL runtime dev)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
# dependencies from the binaries' libraries (dpkg-shlibdeps): libuv1, librabbitmq4, ...
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME ctxd)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION net)
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION
  "ctxd message-bus worker runtime\n The host process and the bounded contexts it loads as plugins, with a\n hardened systemd unit (ctxd@.service) and an example configuration.")
# dpkg keeps an edited configuration on upgrade only for files listed as conffiles
file(WRITE ${PROJECT_BINARY_DIR}/packaging/conffiles "${CTXD_INSTALL_FULL_CONFDIR}/example.json\n")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_EXTRA ${PROJECT_BINARY_DIR}/packaging/conffiles)
set(CPACK_DEBIAN_DEV_PACKAGE_NAME ctxd-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_COMPONENT_DEV_DESCRIPTION
  "ctxd plugin SDK\n Headers of the plugin ABI, a pkg-config file and a CMake package\n (find_package(ctxd)) to build plugins for an installed ctxd.")
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "ctxd (= ${PROJECT_VERSION})")
include(CPack)
