DROP TABLE lot_withdrawals;
