#!/usr/bin/env bash
# Stage 3 (captioning) is not built yet: see issue 4.
echo "stage 3 (caption) is not built yet" >&2
exit 3
