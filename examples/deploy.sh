#!/usr/bin/env bash
# Deploys the bootstrap layer and one example function with the plain AWS CLI.
#
#   ROLE_ARN=arn:aws:iam::123456789012:role/lambda-basic ./examples/deploy.sh shell arm64
#   INTERPRETER_LAYER_ARN=arn:aws:lambda:...:layer:perl:3 ROLE_ARN=... ./examples/deploy.sh perl
#
# Arguments: the example (perl, python or shell) and the architecture (x86_64 or arm64).
# ROLE_ARN is the function's execution role. provided.al2023 ships no Perl or Python, so the
# perl and python examples also need INTERPRETER_LAYER_ARN, a layer with the interpreter in bin/.
set -euo pipefail
cd "$(dirname "$0")/.."

example=${1:-shell}
arch=${2:-x86_64}
: "${ROLE_ARN:?set ROLE_ARN to the execution role ARN of the function}"
case $example in
    perl) handler=lambda_script.handler ;;
    python | shell) handler=handler.handler ;;
    *) echo "unknown example $example (perl, python or shell)" >&2; exit 2 ;;
esac
case $arch in
    x86_64 | arm64) ;;
    *) echo "unknown architecture $arch (x86_64 or arm64)" >&2; exit 2 ;;
esac
if [ "$example" != shell ] && [ -z "${INTERPRETER_LAYER_ARN:-}" ]; then
    echo "the $example example needs INTERPRETER_LAYER_ARN: provided.al2023 has no $example" >&2
    exit 2
fi

make layer

layer_arn=$(aws lambda publish-layer-version \
    --layer-name "bootstrap-$arch" \
    --description "bootstrap: a custom runtime that runs any interpreter" \
    --zip-file "fileb://dist/bootstrap-layer-$arch.zip" \
    --compatible-runtimes provided.al2023 provided.al2 \
    --compatible-architectures "$arch" \
    --query LayerVersionArn --output text)
echo "published $layer_arn"

layers=("$layer_arn")
[ -n "${INTERPRETER_LAYER_ARN:-}" ] && layers+=("$INTERPRETER_LAYER_ARN")

aws lambda create-function \
    --function-name "bootstrap-example-$example-$arch" \
    --runtime provided.al2023 \
    --architectures "$arch" \
    --handler "$handler" \
    --role "$ROLE_ARN" \
    --zip-file "fileb://dist/example-$example.zip" \
    --layers "${layers[@]}" \
    --timeout 10 \
    --query FunctionArn --output text

echo "invoke it with:"
echo "  aws lambda invoke --function-name bootstrap-example-$example-$arch \\"
echo "      --cli-binary-format raw-in-base64-out --payload file://examples/events/hello.json out.json"
