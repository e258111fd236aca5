"""ffnlp_core: the Streamlit-free library behind ffnlp."""
