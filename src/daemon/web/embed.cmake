# Compiles the status page's files into C arrays (cmake -P, at build time):
#   cmake -DOUT=web_assets.c -DDIR=src/daemon/web -DFILES="index.html;app.js;..." -P embed.cmake
# index.html is served at /, every other file at /ui/NAME, with the
# Content-Type of its extension (src/daemon/web.c serves them).
cmake_minimum_required(VERSION 3.16)

set(body "")
set(table "")
set(k 0)
foreach(name ${FILES})
  file(READ "${DIR}/${name}" hex HEX)
  string(LENGTH "${hex}" n)
  if(n EQUAL 0)
    message(FATAL_ERROR "embed.cmake: ${DIR}/${name} is empty")
  endif()
  # 16 bytes a line, then 0xNN, each
  string(REGEX REPLACE "([0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f])"
         "\\1\n    " hex "${hex}")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
  if(name STREQUAL "index.html")
    set(path "/")
  else()
    set(path "/ui/${name}")
  endif()
  if(name MATCHES "\\.html$")
    set(type "text/html; charset=utf-8")
  elseif(name MATCHES "\\.js$")
    set(type "text/javascript; charset=utf-8")
  elseif(name MATCHES "\\.css$")
    set(type "text/css; charset=utf-8")
  elseif(name MATCHES "\\.svg$")
    set(type "image/svg+xml")
  else()
    message(FATAL_ERROR "embed.cmake: ${name}: no Content-Type for this extension")
  endif()
  string(APPEND body "/* ${name} */\nstatic const unsigned char f${k}[] = {\n    ${hex}\n};\n\n")
  string(APPEND table "    {\"${path}\", \"${type}\", f${k}, sizeof(f${k})},\n")
  math(EXPR k "${k} + 1")
endforeach()

file(WRITE "${OUT}.tmp"
  "/* Generated at build time by src/daemon/web/embed.cmake from src/daemon/web/: do not edit. */\n"
  "#include \"daemon/web_int.h\"\n\n"
  "${body}"
  "const struct ds_web_asset ds__web_assets[] = {\n${table}};\n"
  "const size_t ds__web_nassets = ${k};\n")
file(RENAME "${OUT}.tmp" "${OUT}")
