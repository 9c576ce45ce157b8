/*
 * encode.h
 *		Custom models over named, typed columns (encode.c): the encoding that
 *		cs.train_model learns from a query without a features column, stored
 *		in cs.models.encoding and applied by cs.predict_row to a record.
 */
#ifndef CS_ENCODE_H
#define CS_ENCODE_H

/* What cs.train_model needs to train on an encoded query and to store the encoding. */
typedef struct CsTrainingEncoding
{
	char	   *encoding_json;	/* the encoding, stored in cs.models.encoding */
	char	   *query;			/* the user's query, stored as training_data */
	char	   *params_text;	/* the user's params, stored in metrics.params */
} CsTrainingEncoding;

/*
 * For a training query without a features column: learns the encoding of its
 * columns, rewrites *query to return the encoded features and *params_text to
 * name them.  Returns NULL (and changes nothing) for a query with features.
 */
extern CsTrainingEncoding *CsEncodeTrainingQuery(const char *kind, char **query, char **params_text);

/* Stores the encoding, the user's query and params with the registered model. */
extern void CsEncodingStore(int32 id, const CsTrainingEncoding *enc);

#endif							/* CS_ENCODE_H */
