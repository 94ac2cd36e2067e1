#!/bin/sh
# minio-init (docker-compose.yaml), run with the minio/mc image on every `docker compose up`: the
# bucket, and one MinIO user per client with a policy of its own, so that neither Airflow nor
# MLflow holds MinIO's root keys:
#   $MINIO_APP_USER     Airflow's aws_default: objects under store/ (and logs/, remote task logs)
#   $MINIO_MLFLOW_USER  the MLflow server: objects under mlflow/ (its artifacts)
# Both may list the bucket's keys; neither can touch the other's objects, other buckets, users or
# policies. Running it again is harmless and applies changed passwords from .env.
# Nothing secret goes on a command line (any process on the host can read those): the root keys
# arrive in MC_HOST_nightshift (mc's alias from the environment), and each user's secret key
# reaches `mc admin user add` on its standard input.
set -eu

: "${MC_HOST_nightshift:?must be set (http://ROOT_USER:ROOT_PASSWORD@minio:9000)}"
: "${NIGHTSHIFT_BUCKET:?must be set in .env}"
: "${MINIO_APP_USER:?must be set in .env}" "${MINIO_APP_PASSWORD:?must be set in .env}"
: "${MINIO_MLFLOW_USER:?must be set in .env}" "${MINIO_MLFLOW_PASSWORD:?must be set in .env}"

bucket="$NIGHTSHIFT_BUCKET"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# policy NAME PREFIX...: list the bucket; read, write and delete the objects under each PREFIX/
policy() {
    name="$1"
    shift
    objects=""
    for prefix in "$@"; do
        objects="$objects${objects:+, }\"arn:aws:s3:::$bucket/$prefix/*\""
    done
    cat >"$work/$name.json" <<JSON
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
      "Resource": ["arn:aws:s3:::$bucket"]
    },
    {
      "Effect": "Allow",
      "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
                 "s3:ListMultipartUploadParts"],
      "Resource": [$objects]
    }
  ]
}
JSON
    mc admin policy create nightshift "$name" "$work/$name.json"
}

# user ACCESS_KEY SECRET_KEY POLICY: create the user (or set its secret key), attach POLICY
user() {
    mc admin user add nightshift "$1" <<SECRET
$2
SECRET
    mc admin policy attach nightshift "$3" --user "$1"
}

mc mb --ignore-existing "nightshift/$bucket"
policy nightshift-app store logs
policy nightshift-mlflow mlflow
user "$MINIO_APP_USER" "$MINIO_APP_PASSWORD" nightshift-app
user "$MINIO_MLFLOW_USER" "$MINIO_MLFLOW_PASSWORD" nightshift-mlflow
echo "minio-init: bucket $bucket ready; $MINIO_APP_USER may use store/ and logs/, $MINIO_MLFLOW_USER mlflow/"
