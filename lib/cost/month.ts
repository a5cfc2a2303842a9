/** The month the estimate prices (AWS bills by the hour; 30.4 days is the average month). */
export const DAYS_PER_MONTH = 30.4;
export const HOURS_PER_MONTH = DAYS_PER_MONTH * 24;
