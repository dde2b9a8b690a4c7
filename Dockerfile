# video_caption on a GPU machine: all three stages, ffmpeg, and vLLM as the inference server.
#   docker build -t video_caption .
#   docker run --gpus all --rm -v /data:/data -v ~/.cache/huggingface:/root/.cache/huggingface \
#       -e VIDEO_FOLDER=/data/videos -e OUTPUT_FOLDER=/data/output \
#       -e VLM_SERVE=vllm -e VLM_MODEL=Qwen/Qwen2.5-VL-7B-Instruct video_caption
# vLLM lives in its own virtual environment (/opt/vllm, its `vllm` command on PATH), because it pins
# its own torch: stage 3 starts `vllm serve` (VLM_SERVE=vllm / LLM_SERVE=vllm) and talks to it over
# HTTP, while the pipeline keeps the torch it is tested with.
FROM nvidia/cuda:12.9.1-cudnn-runtime-ubuntu24.04

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ffmpeg python3 python3-venv python3-dev build-essential cmake git \
 && rm -rf /var/lib/apt/lists/*

RUN python3 -m venv /opt/vllm && /opt/vllm/bin/pip install --no-cache-dir vllm \
 && ln -s /opt/vllm/bin/vllm /usr/local/bin/vllm

RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHON=/opt/venv/bin/python
WORKDIR /opt/video_caption
COPY requirements.txt pyproject.toml README.md ./
RUN pip install --no-cache-dir -r requirements.txt
# The prompts and the aesthetic head are package data inside video_caption/.
COPY video_caption ./video_caption
COPY run_pipeline.sh stage_1_video_cut.sh stage_2_filter_data.sh stage_3_video_caption.sh ./
COPY scripts ./scripts
RUN pip install --no-cache-dir --no-deps -e .

# Data and models are bind-mounted (see above); weights are read from the Hugging Face cache.
ENV VIDEO_FOLDER=/data/videos OUTPUT_FOLDER=/data/output
# run_pipeline.sh, as the README runs it: a stage where some files failed (exit 2) lets the next go on.
CMD ["bash", "run_pipeline.sh"]
