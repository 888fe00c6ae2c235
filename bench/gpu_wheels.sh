#!/bin/bash
# Downloads, into .whl/, the wheels that bench/gpu_check.sh installs on a lent GPU machine, which has
# torch, numpy, pandas, scipy, scikit-learn, sentence-transformers, pytest and friends but no network,
# transformers 5.17 (the suite pins 5.24) and none of trl, datasets or pymoo. Versions: constraints.txt
# and the CPU venv's (pyarrow, ~40 MB, is not carried: datasets wants >= 24). About 33 MB; the device tool carries at most 64 MiB. Run from the repository root:
#     bash bench/gpu_wheels.sh && echo /.whl/ >> .git/info/exclude
set -euo pipefail
rm -rf .whl && mkdir .whl
platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64
           --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
for spec in transformers==5.24.0 trl==1.16.0 huggingface_hub==2.4.0 tokenizers==0.23.3 pymoo==0.6.2 \
            datasets==5.2.0 peft==0.21.2 accelerate==1.15.0 httpx2==2.16.2 httpcore2==2.16.2 truststore==0.10.5 \
            moocore==0.3.2 cffi==2.1.1 pycparser==3.12 platformdirs==4.14.8 autograd==1.9.1 cma==4.5.0 \
            alive-progress==3.3.0 about-time==4.2.1 graphemeu==0.7.2 Deprecated==1.3.1 dill==0.4.1 \
            multiprocess==0.70.19 click==8.5.1 regex==2026.11.19 hf-xet==1.8.0 safetensors==0.8.0 \
            fsspec==2026.9.0; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        "${platforms[@]}" -d .whl "$spec"
done
du -sh .whl
