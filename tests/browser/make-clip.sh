#!/bin/sh
# Makes a short camera clip (.y4m, what Chromium's fake camera plays) from a still photo:
#   tests/browser/make-clip.sh PHOTO OUT.y4m [FPS]
# The photo is padded (never cropped or stretched) to 640×480, the fake camera's size; FPS
# (default 10) is the rate the fake camera plays it at.
set -eu
if [ $# -lt 2 ] || [ $# -gt 3 ]; then
  echo "usage: $0 PHOTO OUT.y4m [FPS]" >&2
  exit 2
fi
ffmpeg -hide_banner -loglevel error -y -loop 1 -i "$1" -t 2 -r "${3:-10}" \
  -vf "scale=640:480:force_original_aspect_ratio=decrease,pad=640:480:(ow-iw)/2:(oh-ih)/2,format=yuv420p" \
  -f yuv4mpegpipe "$2"
