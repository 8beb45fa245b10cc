# Installation: libraries, public headers, a CMake package and a pkg-config
# file. Included from the top-level CMakeLists.txt after the targets exist.
#
# Installed layout (prefix-relative, GNUInstallDirs):
#   ${CMAKE_INSTALL_INCLUDEDIR}/muon/muon.h
#   ${CMAKE_INSTALL_LIBDIR}/libmuon.so -> libmuon.so.0 -> libmuon.so.X.Y.Z
#   ${CMAKE_INSTALL_LIBDIR}/libmuon.a
#   ${CMAKE_INSTALL_LIBDIR}/pkgconfig/muon.pc
#   ${CMAKE_INSTALL_LIBDIR}/cmake/muon/muon{Config,ConfigVersion,Targets*}.cmake
#
# Both the CMake package and muon.pc locate the prefix relative to
# themselves, so `cmake --install build --prefix DIR`, DESTDIR staging and
# moving the installed tree all work.

include(CMakePackageConfigHelpers)

set(MUON_CMAKE_INSTALL_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/muon")
set(MUON_PKGCONFIG_INSTALL_DIR "${CMAKE_INSTALL_LIBDIR}/pkgconfig")

install(TARGETS muon muon_static
  EXPORT muonTargets
  LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}"
  ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}"
  RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}")

install(DIRECTORY api/include/muon
  DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}"
  FILES_MATCHING PATTERN "*.h")

# ---------------------------------------------------------------- CMake
# find_package(muon) then target_link_libraries(app muon::muon), or
# muon::muon_static for the archive.
install(EXPORT muonTargets
  NAMESPACE muon::
  FILE muonTargets.cmake
  DESTINATION "${MUON_CMAKE_INSTALL_DIR}")

configure_package_config_file(
  "${CMAKE_CURRENT_LIST_DIR}/muonConfig.cmake.in"
  "${CMAKE_CURRENT_BINARY_DIR}/muonConfig.cmake"
  INSTALL_DESTINATION "${MUON_CMAKE_INSTALL_DIR}")

# 0.x: a new minor version may break the API, so only the same minor matches.
write_basic_package_version_file(
  "${CMAKE_CURRENT_BINARY_DIR}/muonConfigVersion.cmake"
  VERSION "${PROJECT_VERSION}"
  COMPATIBILITY SameMinorVersion)

install(FILES
  "${CMAKE_CURRENT_BINARY_DIR}/muonConfig.cmake"
  "${CMAKE_CURRENT_BINARY_DIR}/muonConfigVersion.cmake"
  DESTINATION "${MUON_CMAKE_INSTALL_DIR}")

# ---------------------------------------------------------------- pkg-config
# prefix is derived from ${pcfiledir} (where muon.pc is found), so the file
# stays right whatever prefix the tree is installed or moved to. Absolute
# LIBDIR/INCLUDEDIR settings are used as given.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(MUON_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(MUON_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  file(RELATIVE_PATH _muon_pc_up
    "/_/${MUON_PKGCONFIG_INSTALL_DIR}" "/_")
  string(REGEX REPLACE "/$" "" _muon_pc_up "${_muon_pc_up}")
  set(MUON_PC_PREFIX "\${pcfiledir}/${_muon_pc_up}")
  set(MUON_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(MUON_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(MUON_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()

configure_file("${CMAKE_CURRENT_LIST_DIR}/muon.pc.in"
  "${CMAKE_CURRENT_BINARY_DIR}/muon.pc" @ONLY)
install(FILES "${CMAKE_CURRENT_BINARY_DIR}/muon.pc"
  DESTINATION "${MUON_PKGCONFIG_INSTALL_DIR}")

# ---------------------------------------------------------------- muonctl
install(TARGETS muonctl RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}")
install(FILES "${PROJECT_SOURCE_DIR}/docs/man/muonctl.1"
  DESTINATION "${CMAKE_INSTALL_MANDIR}/man1")

# ---------------------------------------------------------------- muond
# The discovery daemon, its systemd unit and a sample configuration. The
# unit runs /usr/bin/muond: package with a /usr prefix.
install(TARGETS muond RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}")
install(FILES "${PROJECT_SOURCE_DIR}/etc/muond.service"
  DESTINATION "lib/systemd/system")
install(FILES "${PROJECT_SOURCE_DIR}/etc/muond.conf"
  DESTINATION "${CMAKE_INSTALL_DOCDIR}/examples")
install(FILES "${PROJECT_SOURCE_DIR}/docs/man/muond.8"
  DESTINATION "${CMAKE_INSTALL_MANDIR}/man8")
