# Terraform: publish the greenflame layer and profile a function with it (no code change).
# Build the layer first: greenflame lambda layer -o greenflame-layer.zip

variable "greenflame_server" {
  type        = string
  description = "The greenflame server the function reports to"
}

variable "greenflame_ingest_key_parameter" {
  type        = string
  default     = "/greenflame/ingest-key"
  description = "The SSM parameter (SecureString) holding the ingest key"
}

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

resource "aws_lambda_layer_version" "greenflame" {
  layer_name               = "greenflame"
  filename                 = "greenflame-layer.zip"
  source_code_hash         = filebase64sha256("greenflame-layer.zip")
  compatible_runtimes      = ["python3.9", "python3.10", "python3.11", "python3.12", "python3.13"]
  compatible_architectures = ["x86_64", "arm64"]
}

resource "aws_iam_role" "orders" {
  name = "orders"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = "sts:AssumeRole", Principal = { Service = "lambda.amazonaws.com" } }]
  })
}

resource "aws_iam_role_policy_attachment" "orders_logs" {
  role       = aws_iam_role.orders.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
}

resource "aws_iam_role_policy" "greenflame_ingest_key" {
  name = "greenflame-ingest-key"
  role = aws_iam_role.orders.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = "ssm:GetParameter"
      Resource = "arn:aws:ssm:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:parameter${var.greenflame_ingest_key_parameter}"
    }]
  })
}

resource "aws_lambda_function" "orders" {
  function_name    = "orders"
  role             = aws_iam_role.orders.arn
  handler          = "app.lambda_handler"
  runtime          = "python3.12"
  architectures    = ["arm64"]
  filename         = "function.zip"
  source_code_hash = filebase64sha256("function.zip")
  layers           = [aws_lambda_layer_version.greenflame.arn]

  environment {
    variables = {
      AWS_LAMBDA_EXEC_WRAPPER   = "/opt/greenflame-wrapper"
      GREENFLAME_SERVER         = var.greenflame_server
      GREENFLAME_INGEST_KEY_SSM = var.greenflame_ingest_key_parameter
    }
  }
}
