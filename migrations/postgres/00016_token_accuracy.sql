-- Token accuracies of a training job's metric points (OpenAI's
-- train_mean_token_accuracy and valid_mean_token_accuracy): the share of
-- assistant (loss-masked) tokens whose argmax prediction is the label, over
-- the logged training window and over the validation pass.

-- +goose Up
ALTER TABLE metrics_points
  ADD COLUMN train_mean_token_accuracy DOUBLE PRECISION,
  ADD COLUMN valid_mean_token_accuracy DOUBLE PRECISION;

-- +goose Down
ALTER TABLE metrics_points DROP COLUMN train_mean_token_accuracy, DROP COLUMN valid_mean_token_accuracy;
